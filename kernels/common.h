// common.h: scalar math shared by every backend. Everything here is __host__ __device__ so the CUDA
// kernels and the CPU tests run exactly the same code (the CPU op tests exercise it).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define LB_HD __host__ __device__ __forceinline__
#else
#define LB_HD inline
#endif

namespace lb {

// ---- bf16: the top 16 bits of an IEEE float; f32 -> bf16 rounds to nearest even, NaN stays NaN.
LB_HD uint32_t lb_f32_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u; std::memcpy(&u, &f, 4); return u;
#endif
}
LB_HD float lb_bits_f32(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f; std::memcpy(&f, &u, 4); return f;
#endif
}
LB_HD uint16_t lb_f32_to_bf16(float f) {
  uint32_t u = lb_f32_bits(f);
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu)) return (uint16_t)((u >> 16) | 0x0040u);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}
LB_HD float lb_bf16_to_f32(uint16_t h) { return lb_bits_f32((uint32_t)h << 16); }

// ---- GELU, erf form (BERT's "gelu"): 0.5 x (1 + erf(x / sqrt 2)); and its derivative.
// Phi(x) as erfcf(-x / sqrt 2) / 2, not (1 + erff) / 2, which cancels for x < 0 (1e-3 relative at x = -4)
LB_HD float lb_gelu(float x) { return 0.5f * x * erfcf(-x * 0.70710678118654752f); }
LB_HD float lb_gelu_grad(float x) {
  const float cdf = 0.5f * erfcf(-x * 0.70710678118654752f);
  const float pdf = 0.39894228040143268f * expf(-0.5f * x * x);
  return cdf + x * pdf;
}
// The oracle's Phi(x) is erfc(-x / sqrt 2) / 2: 1 + erf(x / sqrt 2) cancels for x < 0 and was off by
// 2x at x = -8.4 (1 + erf near 1e-16, a few f64 ulps of 1), 4e-5 relative at x = -7.
LB_HD double lb_gelu_d(double x) { return 0.5 * x * erfc(-x * 0.70710678118654752440); }
LB_HD double lb_gelu_grad_d(double x) {
  return 0.5 * erfc(-x * 0.70710678118654752440) + x * 0.39894228040143267794 * exp(-0.5 * x * x);
}

// ---- Counter-based RNG: Philox4x32-10 (Salmon et al. 2011). Pure function of (seed, counter), so a
// dropout mask is regenerated in the backward pass instead of stored, on any backend, bit-identically.
LB_HD uint32_t lb_mulhilo(uint32_t a, uint32_t b, uint32_t* hi) {
  const uint64_t p = (uint64_t)a * (uint64_t)b;
  *hi = (uint32_t)(p >> 32);
  return (uint32_t)p;
}
// One Philox4x32 round on counter words (c0, c1, c2, c3) with key (k0, k1), then the key bump.
LB_HD void lb_philox_round(uint32_t& c0, uint32_t& c1, uint32_t& c2, uint32_t& c3, uint32_t& k0, uint32_t& k1) {
  uint32_t hi0, hi1;
  const uint32_t lo0 = lb_mulhilo(0xD2511F53u, c0, &hi0);
  const uint32_t lo1 = lb_mulhilo(0xCD9E8D57u, c2, &hi1);
  const uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
  c0 = n0; c1 = n1; c2 = n2; c3 = n3;
  k0 += 0x9E3779B9u; k1 += 0xBB67AE85u;
}
// Philox4x32-10 of a whole 128-bit counter ctr[0..3] (least significant word first) under key (k0, k1),
// in place: the function Random123's known-answer vectors test (test/host-math.test.ts).
LB_HD void lb_philox4x32_10(uint32_t ctr[4], uint32_t k0, uint32_t k1) {
  uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
  for (int r = 0; r < 10; r++) lb_philox_round(c0, c1, c2, c3, k0, k1);
  ctr[0] = c0; ctr[1] = c1; ctr[2] = c2; ctr[3] = c3;
}
// A Philox word as a uniform in [0, 1) with 24 bits (exact in f32).
LB_HD float lb_word_uniform(uint32_t x) { return (float)(x >> 8) * (1.0f / 16777216.0f); }
// Uniforms of counters 4 block .. 4 block + 3: the four words of one Philox4x32-10(seed, block)
// (what lb_uniform gives for each of them; kernels that own whole blocks call this once per 4 counters).
LB_HD void lb_uniform4(uint64_t seed, uint64_t block, float u[4]) {
  uint32_t w[4] = {(uint32_t)block, (uint32_t)(block >> 32), 0u, 0u};
  lb_philox4x32_10(w, (uint32_t)seed, (uint32_t)(seed >> 32));
  for (int k = 0; k < 4; k++) u[k] = lb_word_uniform(w[k]);
}
// The two words of Philox4x32-10(seed, counter / 4) in the half that holds counter: words 0 and 1 when
// counter % 4 < 2, else 2 and 3. Its last round computes only that half (one multiply): the GPU kernels
// that inline it keep fewer registers live.
LB_HD void lb_philox_half(uint64_t seed, uint64_t counter, uint32_t* even, uint32_t* odd) {
  const uint64_t block = counter >> 2;
  uint32_t c0 = (uint32_t)block, c1 = (uint32_t)(block >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
  for (int r = 0; r < 9; r++) lb_philox_round(c0, c1, c2, c3, k0, k1);
  // round 10: words 0 and 1 are hi ^ c1 ^ k0 and lo of 0xCD9E8D57 * c2; words 2 and 3 hi ^ c3 ^ k1 and
  // lo of 0xD2511F53 * c0
  const bool w23 = (counter & 2) != 0;
  uint32_t hi;
  *odd = lb_mulhilo(w23 ? 0xD2511F53u : 0xCD9E8D57u, w23 ? c0 : c2, &hi);
  *even = hi ^ (w23 ? c3 : c1) ^ (w23 ? k1 : k0);
}
// Uniform in [0, 1) with 24 bits: word counter % 4 of Philox4x32-10(seed, block counter / 4), so four
// consecutive counters share one evaluation (the vectorised CPU code computes each block once).
LB_HD float lb_uniform(uint64_t seed, uint64_t counter) {
  uint32_t even, odd;
  lb_philox_half(seed, counter, &even, &odd);
  return lb_word_uniform((counter & 1) ? odd : even);
}
// Uniforms of counters c and c + 1 for even c: one lb_philox_half, so a pair costs what lb_uniform costs
// for one (the CUDA attention kernels' column pairs).
LB_HD void lb_uniform2(uint64_t seed, uint64_t counter, float u[2]) {
  uint32_t even, odd;
  lb_philox_half(seed, counter, &even, &odd);
  u[0] = lb_word_uniform(even);
  u[1] = lb_word_uniform(odd);
}
// Keep element `counter` with probability 1 - p.
LB_HD bool lb_dropout_keep(uint64_t seed, uint64_t counter, float p) { return lb_uniform(seed, counter) >= p; }

}  // namespace lb
