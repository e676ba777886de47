// gemm_gelu.h: a branch-free GELU (erf form) that the compiler vectorises, for the GEMM epilogue.
// glibc's scalar erff would cost about as much as the GEMM itself for the FFN up-projection, so erfc
// is evaluated with fitted polynomials (least squares on Chebyshev nodes, fp64, then rounded to f32):
//   a = |x| / sqrt 2
//   a <  1: erfc(a) = 1 - a * P(a^2)                       (P degree 5)
//   a >= 1: erfc(a) = exp(R(a - 3) - a^2)                   (R degree 9, fitted on [1, 5])
//   gelu(x) = x/2 * (x >= 0 ? 2 - erfc(a) : erfc(a))       (no cancellation for negative x)
// Relative error vs the fp64 reference: ~1e-6 (a^2 is split into exact halves to keep it there).
#pragma once
#include <cstdint>
#include <cstring>

#define LB_ALWAYS_INLINE inline __attribute__((always_inline))

namespace lb {
namespace gemm {

LB_ALWAYS_INLINE float bits_to_f32(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
LB_ALWAYS_INLINE uint32_t f32_to_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }

LB_ALWAYS_INLINE float gelu_fast(float x) {
  float a = (x < 0.0f ? -x : x) * 0.70710678118654752f;
  a = a < 5.0f ? a : 5.0f;  // erfc(5) ~ 1.5e-12: beyond it gelu(x) is 0 (x < 0) or x (x > 0) in f32
  // small range: erfc = 1 - a P(a^2)
  const float s = a * a;
  float ps = -0.0005654108827002347f;
  ps = ps * s + 0.004923280794173479f;
  ps = ps * s - 0.026716390624642372f;
  ps = ps * s + 0.11280364543199539f;
  ps = ps * s - 0.37612348794937134f;
  ps = ps * s + 1.1283791065216064f;
  const float t_small = 1.0f - a * ps;
  // large range: erfc = exp(R(a - 3) - a^2); a^2 = ah^2 + al (a + ah) exactly enough (ah: 12 bits)
  const float u = a - 3.0f;
  float r = -1.1025428392485992e-07f;
  r = r * u + 1.1252047897869488e-06f;
  r = r * u - 7.247331723192474e-06f;
  r = r * u + 4.296665792935528e-05f;
  r = r * u - 0.0002454351633787155f;
  r = r * u + 0.00135341240093112f;
  r = r * u - 0.007412087172269821f;
  r = r * u + 0.042605750262737274f;
  r = r * u - 0.30375364422798157f;
  r = r * u - 1.7203630208969116f;
  const float ah = bits_to_f32(f32_to_bits(a) & 0xfffff000u);
  const float al = a - ah;
  const float q = (r - ah * ah) - al * (a + ah);  // in [-28, -0.8]
  // exp(q) = 2^n e^f, n = rint(q log2 e); the 1.5*2^23 trick rounds without a libm call
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
  const float t_large = e * bits_to_f32((uint32_t)((int32_t)n + 127) << 23);
  const float t = a < 1.0f ? t_small : t_large;
  return 0.5f * x * (x < 0.0f ? t : 2.0f - t);
}

}  // namespace gemm
}  // namespace lb
