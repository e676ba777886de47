// gemm_gelu.h: a branch-free GELU (erf form) that the compiler vectorises, for the GEMM epilogue and
// the elementwise GELU kernels. glibc's scalar erff would cost about as much as the GEMM itself for the
// FFN up-projection, so the lower tail of the normal CDF is one rational-in-t form (fitted in fp64,
// minimax relative error on [0, 13], coefficients rounded to f32):
//   ax = min(|x|, 13),  t = 1 / (1 + p ax)
//   h  = Phi(-ax) = P(t) exp(-ax^2 / 2)            (P degree 8: fit error 3e-8 relative)
//   gelu(x)  = max(x, 0) - ax h                     (x h for x < 0, x - x h for x >= 0: no cancellation)
//   gelu'(x) = Phi(x) + x phi(x),  Phi(x) = x < 0 ? h : 1 - h,  phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
// The backward shares its one exp between Phi and phi. exp(-ax^2/2) is 2^z, z = -ax^2 log2(e) / 2,
// with a degree-5 polynomial for 2^f, |f| <= 1/2. Measured vs the fp64 reference: gelu within 6e-7
// relative for |x| <= 2, 2e-6 at |x| = 6 and 7e-6 near 13 (the rounding of z, gelu(-13) ~ -1e-37);
// absolute error of gelu and gelu' <= 2.4e-7 on [-15, 15]. Beyond |x| = 13 gelu is x or ~0 and gelu'
// 1 or ~0, as in f32.
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

// Phi(-ax) = P(t) exp(-ax^2 / 2), t = 1 / (1 + kPhiP ax); P highest degree first
constexpr float kPhiP = 0.2276015281677246f;
constexpr float kPhiT[9] = {-0.0863519161939621f, 0.3370753526687622f,  -0.36130523681640625f,
                            0.38354507088661194f, -0.0825696587562561f, 0.13711470365524292f,
                            0.08058670163154602f, 0.09196237474679947f, -5.7405737607041374e-05f};
constexpr float kPhiClamp = 13.0f;  // Phi(-13) ~ 6e-39: past it gelu is x or ~0 in f32
// 2^f for |f| <= 1/2, highest degree first (Lawson-weighted fit, max relative error 1.9e-7 in f32 Horner)
constexpr float kExp2P[6] = {0.001326472731307149f, 0.009671512991189957f, 0.05550733581185341f, 0.24022242426872253f,
                             0.6931470036506653f, 1.0f};
constexpr float kHalfLog2e = 0.72134752044448170f;  // log2(e) / 2
constexpr float kInvSqrt2Pi = 0.39894228040143268f;

// exp(-ax^2 / 2) for ax in [0, 13] as 2^n 2^f, n = rint(z) (the 1.5*2^23 trick rounds without a libm call)
LB_ALWAYS_INLINE float exp_neg_half_sq(float ax) {
  const float z = -(ax * kHalfLog2e) * ax;  // in [-122, 0]
  const float n = (z + 12582912.0f) - 12582912.0f;
  const float f = z - n;
  float e = kExp2P[0];
  for (int i = 1; i < 6; i++) e = e * f + kExp2P[i];
  return e * bits_to_f32((uint32_t)((int32_t)n + 127) << 23);
}

// P(t) for ax in [0, 13]
LB_ALWAYS_INLINE float phi_tail_factor(float ax) {
  const float t = 1.0f / (1.0f + kPhiP * ax);
  float r = kPhiT[0];
  for (int i = 1; i < 9; i++) r = r * t + kPhiT[i];
  return r;
}

LB_ALWAYS_INLINE float gelu_fast(float x) {
  float ax = x < 0.0f ? -x : x;
  ax = ax > kPhiClamp ? kPhiClamp : ax;  // NaN stays NaN
  const float h = phi_tail_factor(ax) * exp_neg_half_sq(ax);  // Phi(-|x|)
  return (x > 0.0f ? x : 0.0f) - ax * h;
}

// gelu'(x) = Phi(x) + x phi(x), one exp for both
LB_ALWAYS_INLINE float gelu_grad_fast(float x) {
  float ax = x < 0.0f ? -x : x;
  ax = ax > kPhiClamp ? kPhiClamp : ax;
  const float e = exp_neg_half_sq(ax);
  const float h = phi_tail_factor(ax) * e;
  const float cdf = x < 0.0f ? h : 1.0f - h;
  return cdf + x * kInvSqrt2Pi * e;
}

#if defined(__x86_64__) && defined(__GNUC__)
// The same math on 16 lanes with FMA (Horner steps fused) and t from rcp14 plus one Newton step
// (relative error ~2^-28, below the fit's), for the elementwise GELU kernels; a result may differ from
// the scalar form in the last bits.
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define LB_GELU16 __attribute__((target("avx512f,avx512dq,fma"), always_inline)) inline
// N vectors at a time, each step applied to all N before the next: the chains are long (Horner, exp),
// so independent work has to sit next to each other for the out-of-order window to find it.
#define LB_EACH for (int k = 0; k < N; k++)
// ax = min(|x|, 13) in one vrangeps (imm 0b1010: min of magnitudes, sign cleared); NaN stays NaN
template <int N>
LB_GELU16 void phi_arg16(const __m512* x, __m512* ax) {
  LB_EACH ax[k] = _mm512_range_ps(x[k], _mm512_set1_ps(kPhiClamp), 0x0a);
}
// e = exp(-ax^2 / 2)
template <int N>
LB_GELU16 void exp_neg_half_sq16(const __m512* ax, __m512* e) {
  __m512 z[N], n[N];
  LB_EACH z[k] = _mm512_mul_ps(_mm512_mul_ps(ax[k], _mm512_set1_ps(-kHalfLog2e)), ax[k]);
  LB_EACH n[k] = _mm512_roundscale_ps(z[k], _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  LB_EACH z[k] = _mm512_sub_ps(z[k], n[k]);
  LB_EACH e[k] = _mm512_set1_ps(kExp2P[0]);
  for (int i = 1; i < 6; i++) LB_EACH e[k] = _mm512_fmadd_ps(e[k], z[k], _mm512_set1_ps(kExp2P[i]));
  LB_EACH e[k] = _mm512_scalef_ps(e[k], n[k]);
}
// r = P(t)
template <int N>
LB_GELU16 void phi_tail_factor16(const __m512* ax, __m512* r) {
  __m512 t[N];
  LB_EACH r[k] = _mm512_fmadd_ps(ax[k], _mm512_set1_ps(kPhiP), _mm512_set1_ps(1.0f));
  // a true division: the divider is idle otherwise, where rcp14 + a Newton step took 3 slots of the FMA
  // pipes that bound this loop; and t is now correctly rounded, as in the scalar phi_tail_factor
  LB_EACH t[k] = _mm512_div_ps(_mm512_set1_ps(1.0f), r[k]);
  LB_EACH r[k] = _mm512_set1_ps(kPhiT[0]);
  for (int i = 1; i < 9; i++) LB_EACH r[k] = _mm512_fmadd_ps(r[k], t[k], _mm512_set1_ps(kPhiT[i]));
}
// x (N vectors) = gelu(x)
template <int N>
LB_GELU16 void gelu16(__m512* x) {
  __m512 ax[N], r[N], e[N];
  phi_arg16<N>(x, ax);
  phi_tail_factor16<N>(ax, r);
  exp_neg_half_sq16<N>(ax, e);
  // max(0, x) keeps a NaN x (max returns its second operand when one is NaN)
  LB_EACH x[k] = _mm512_fnmadd_ps(ax[k], _mm512_mul_ps(r[k], e[k]), _mm512_max_ps(_mm512_setzero_ps(), x[k]));
}
// x (N vectors) = gelu'(x)
template <int N>
LB_GELU16 void gelu_grad16(__m512* x) {
  __m512 ax[N], r[N], e[N];
  phi_arg16<N>(x, ax);
  phi_tail_factor16<N>(ax, r);
  exp_neg_half_sq16<N>(ax, e);
  LB_EACH {
    const __m512 h = _mm512_mul_ps(r[k], e[k]);
    const __mmask16 pos = _mm512_cmp_ps_mask(x[k], _mm512_setzero_ps(), _CMP_NLT_UQ);  // x >= 0 or NaN
    const __m512 cdf = _mm512_mask_sub_ps(h, pos, _mm512_set1_ps(1.0f), h);
    x[k] = _mm512_fmadd_ps(_mm512_mul_ps(x[k], _mm512_set1_ps(kInvSqrt2Pi)), e[k], cdf);
  }
}
#undef LB_EACH
#undef LB_GELU16
#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif

}  // namespace gemm
}  // namespace lb
