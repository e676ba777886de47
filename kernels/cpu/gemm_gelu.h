// gemm_gelu.h: a branch-free GELU (erf form) that the compiler vectorises, for the GEMM epilogue.
// glibc's scalar erff would cost about as much as the GEMM itself for the FFN up-projection, so erfc
// is evaluated with one fitted polynomial (least squares on Chebyshev nodes, fp64, rounded to f32):
//   a = min(|x| / sqrt 2, 5)
//   erfc(a) = exp(R(a - 2.5) - a^2)                         (R degree 12, fitted on [0, 5])
//   gelu(x) = x/2 * (x >= 0 ? 2 - erfc(a) : erfc(a))       (no cancellation for negative x)
// Relative error vs the fp64 reference: ~1e-6 where |gelu(x)| > 1e-12 (a^2 is split into exact halves
// to keep it there); beyond |x| = 5 sqrt 2 the result is 0 or x, as in f32.
#pragma once
#include <cstdint>
#include <cstring>

#define LB_ALWAYS_INLINE inline __attribute__((always_inline))

namespace lb {
namespace gemm {

LB_ALWAYS_INLINE float bits_to_f32(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
LB_ALWAYS_INLINE uint32_t f32_to_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }

// exp(q) for q in [-87, 0]: 2^n e^f, n = rint(q log2 e); the 1.5*2^23 trick rounds without a libm call.
LB_ALWAYS_INLINE float exp_fast(float q) {
  const float z = q * 1.4426950408889634f;
  const float n = (z + 12582912.0f) - 12582912.0f;
  const float f = (q - n * 0.693145751953125f) - n * 1.428606765330187e-06f;
  float e = 0.001394858816638589f;
  e = e * f + 0.008375135250389576f;
  e = e * f + 0.041666217148303986f;
  e = e * f + 0.16666415333747864f;
  e = e * f + 0.5f;
  e = e * f + 1.0f;
  e = e * f + 1.0f;
  return e * bits_to_f32((uint32_t)((int32_t)n + 127) << 23);
}

// -a^2 for a in [0, 5], with a^2 = ah^2 + al (a + ah) and ah = a truncated to 12 bits (ah^2 exact in f32).
LB_ALWAYS_INLINE float neg_square_split(float a, float r) {
  const float ah = bits_to_f32(f32_to_bits(a) & 0xfffff000u);
  const float al = a - ah;
  return (r - ah * ah) - al * (a + ah);
}

// erfc(a) for a = min(|x| / sqrt 2, 5).
LB_ALWAYS_INLINE float erfc_fast(float a) {
  const float u = a - 2.5f;
  float r = -6.179380562798542e-09f;
  r = r * u + 3.053943231634548e-08f;
  r = r * u + 5.426089355609065e-09f;
  r = r * u - 3.0916046966922295e-07f;
  r = r * u + 1.7058972616723622e-06f;
  r = r * u - 1.2190270354039967e-05f;
  r = r * u + 7.714759703958407e-05f;
  r = r * u - 0.00042194651905447245f;
  r = r * u + 0.0021653715521097183f;
  r = r * u - 0.01085729245096445f;
  r = r * u + 0.05610630288720131f;
  r = r * u - 0.35268092155456543f;
  r = r * u - 1.556815266609192f;
  return exp_fast(neg_square_split(a, r));  // log erfc(a) in [-27.2, 0]
}

LB_ALWAYS_INLINE float gelu_fast(float x) {
  float a = (x < 0.0f ? -x : x) * 0.70710678118654752f;
  a = a < 5.0f ? a : 5.0f;  // erfc(5) ~ 1.5e-12
  const float t = erfc_fast(a);
  return 0.5f * x * (x < 0.0f ? t : 2.0f - t);
}

// gelu'(x) = Phi(x) + x phi(x): Phi from the same erfc, phi(x) = exp(-a^2) / sqrt(2 pi) with a = |x|/sqrt 2.
// Beyond |x| = 5 sqrt 2, x phi(x) < 1e-9 and Phi is 0 or 1 in f32.
LB_ALWAYS_INLINE float gelu_grad_fast(float x) {
  float a = (x < 0.0f ? -x : x) * 0.70710678118654752f;
  a = a < 5.0f ? a : 5.0f;
  const float t = erfc_fast(a);
  const float cdf = x < 0.0f ? 0.5f * t : 1.0f - 0.5f * t;
  return cdf + x * 0.39894228040143268f * exp_fast(neg_square_split(a, 0.0f));
}

}  // namespace gemm
}  // namespace lb
