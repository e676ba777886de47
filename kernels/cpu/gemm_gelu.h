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
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#define LB_ALWAYS_INLINE inline __attribute__((always_inline))

namespace lb {
namespace gemm {

LB_ALWAYS_INLINE float bits_to_f32(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
LB_ALWAYS_INLINE uint32_t f32_to_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }

// log erfcx(a) = R(a - 2.5), highest degree first
constexpr float kErfcR[13] = {-6.179380562798542e-09f, 3.053943231634548e-08f, 5.426089355609065e-09f,
                              -3.0916046966922295e-07f, 1.7058972616723622e-06f, -1.2190270354039967e-05f,
                              7.714759703958407e-05f, -0.00042194651905447245f, 0.0021653715521097183f,
                              -0.01085729245096445f, 0.05610630288720131f, -0.35268092155456543f,
                              -1.556815266609192f};
// e^f for |f| <= ln2 / 2, highest degree first
constexpr float kExpP[7] = {0.001394858816638589f, 0.008375135250389576f, 0.041666217148303986f, 0.16666415333747864f,
                            0.5f, 1.0f, 1.0f};

// exp(q) for q in [-87, 0]: 2^n e^f, n = rint(q log2 e); the 1.5*2^23 trick rounds without a libm call.
LB_ALWAYS_INLINE float exp_fast(float q) {
  const float z = q * 1.4426950408889634f;
  const float n = (z + 12582912.0f) - 12582912.0f;
  const float f = (q - n * 0.693145751953125f) - n * 1.428606765330187e-06f;
  float e = kExpP[0];
  for (int i = 1; i < 7; i++) e = e * f + kExpP[i];
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
  float r = kErfcR[0];
  for (int i = 1; i < 13; i++) r = r * u + kErfcR[i];
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

#if defined(__x86_64__) && defined(__GNUC__)
// The same math on 16 lanes with FMA (Horner steps, the a^2 split and the exp reduction fused), for
// the elementwise GELU kernels; a result may differ from the scalar form in the last bit.
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define LB_GELU16 __attribute__((target("avx512f,fma"), always_inline)) inline
// N vectors at a time, each step applied to all N before the next: the chains are long (Horner, exp),
// so independent work has to sit next to each other for the out-of-order window to find it.
#define LB_EACH for (int k = 0; k < N; k++)
template <int N>
LB_GELU16 void exp16(__m512* q) {
  __m512 n[N], e[N];
  LB_EACH n[k] = _mm512_roundscale_ps(_mm512_mul_ps(q[k], _mm512_set1_ps(1.4426950408889634f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  LB_EACH q[k] = _mm512_fnmadd_ps(n[k], _mm512_set1_ps(0.693145751953125f), q[k]);
  LB_EACH q[k] = _mm512_fnmadd_ps(n[k], _mm512_set1_ps(1.428606765330187e-06f), q[k]);
  LB_EACH e[k] = _mm512_set1_ps(kExpP[0]);
  for (int i = 1; i < 7; i++) LB_EACH e[k] = _mm512_fmadd_ps(e[k], q[k], _mm512_set1_ps(kExpP[i]));
  LB_EACH q[k] = _mm512_scalef_ps(e[k], n[k]);
}
// r - a^2, a^2 split as in neg_square_split
LB_GELU16 __m512 neg_square_split16(__m512 a, __m512 r) {
  const __m512 ah = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32((int)0xfffff000u)));
  const __m512 al = _mm512_sub_ps(a, ah);
  return _mm512_fnmadd_ps(al, _mm512_add_ps(a, ah), _mm512_fnmadd_ps(ah, ah, r));
}
// a = min(|x| / sqrt 2, 5)
LB_GELU16 __m512 gelu_arg16(__m512 x) {
  const __m512 ax = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x7fffffff)));
  return _mm512_min_ps(_mm512_mul_ps(ax, _mm512_set1_ps(0.70710678118654752f)), _mm512_set1_ps(5.0f));
}
// t = erfc(a)
template <int N>
LB_GELU16 void erfc16(const __m512* a, __m512* t) {
  __m512 u[N];
  LB_EACH u[k] = _mm512_sub_ps(a[k], _mm512_set1_ps(2.5f));
  LB_EACH t[k] = _mm512_set1_ps(kErfcR[0]);
  for (int i = 1; i < 13; i++) LB_EACH t[k] = _mm512_fmadd_ps(t[k], u[k], _mm512_set1_ps(kErfcR[i]));
  LB_EACH t[k] = neg_square_split16(a[k], t[k]);
  exp16<N>(t);
}
// x (N vectors) = gelu(x)
template <int N>
LB_GELU16 void gelu16(__m512* x) {
  __m512 a[N], t[N];
  LB_EACH a[k] = gelu_arg16(x[k]);
  erfc16<N>(a, t);
  LB_EACH {
    const __mmask16 neg = _mm512_cmp_ps_mask(x[k], _mm512_setzero_ps(), _CMP_LT_OQ);
    const __m512 w = _mm512_mask_blend_ps(neg, _mm512_sub_ps(_mm512_set1_ps(2.0f), t[k]), t[k]);
    x[k] = _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x[k]), w);
  }
}
// x (N vectors) = gelu'(x)
template <int N>
LB_GELU16 void gelu_grad16(__m512* x) {
  __m512 a[N], t[N], e[N];
  LB_EACH a[k] = gelu_arg16(x[k]);
  LB_EACH e[k] = neg_square_split16(a[k], _mm512_setzero_ps());
  erfc16<N>(a, t);
  exp16<N>(e);
  LB_EACH {
    const __m512 ht = _mm512_mul_ps(_mm512_set1_ps(0.5f), t[k]);
    const __mmask16 neg = _mm512_cmp_ps_mask(x[k], _mm512_setzero_ps(), _CMP_LT_OQ);
    const __m512 cdf = _mm512_mask_blend_ps(neg, _mm512_sub_ps(_mm512_set1_ps(1.0f), ht), ht);
    x[k] = _mm512_fmadd_ps(_mm512_mul_ps(x[k], _mm512_set1_ps(0.39894228040143268f)), e[k], cdf);
  }
}
#undef LB_EACH
#undef LB_GELU16
#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif

}  // namespace gemm
}  // namespace lb
