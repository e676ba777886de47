// cpu_util.h: shared helpers of the fast CPU kernels: typed f32/bf16 access (math is always f32),
// dtype dispatch to a template, grow-once scratch, and a stable counting sort for deterministic
// scatter-style reductions.
#pragma once
#include <atomic>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "../common.h"
#include "../ops.h"
#include "threadpool.h"

// Hot loops written as plain C++ get an AVX2 variant (LB_ISA_VARIANTS; LB_ISA_VARIANTS3 adds an
// AVX-512F one), picked per call by what the CPU has and set_cpu_isa allows (cpu::clone_level), so a
// capped run takes the variant a smaller CPU takes (compiler target_clones would pick by the CPU
// alone). The addon is built for baseline x86-64. No FMA: the variants perform the same IEEE mul and
// add per element. One body, name##_body (LB_ISA_BODY, always inlined), compiled into each variant.
#define LB_ISA_BODY inline __attribute__((always_inline))
#if defined(__x86_64__) && defined(__GNUC__)
#define LB_ISA_VARIANTS(ret, name, params, args)                                                  \
  __attribute__((target("avx2"), noinline)) ret name##_avx2 params { return name##_body args; } \
  __attribute__((noinline)) ret name##_base params { return name##_body args; }                 \
  ret name params { return cpu::clone_level() >= 1 ? name##_avx2 args : name##_base args; }
#define LB_ISA_VARIANTS3(ret, name, params, args)                                                     \
  __attribute__((target("avx512f"), noinline)) ret name##_avx512 params { return name##_body args; } \
  __attribute__((target("avx2"), noinline)) ret name##_avx2 params { return name##_body args; }      \
  __attribute__((noinline)) ret name##_base params { return name##_body args; }                      \
  ret name params {                                                                                  \
    const int level = cpu::clone_level();                                                            \
    return level >= 2 ? name##_avx512 args : level == 1 ? name##_avx2 args : name##_base args;       \
  }
#else
#define LB_ISA_VARIANTS(ret, name, params, args) \
  ret name params { return name##_body args; }
#define LB_ISA_VARIANTS3(ret, name, params, args) LB_ISA_VARIANTS(ret, name, params, args)
#endif

// Explicit AVX-512 paths (memory-bound kernels): compiled with target attributes, chosen at run time
// with has_avx512(). Tails use masked loads and stores, so every element sees the same instructions
// wherever a thread's chunk starts or ends.
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define LB_X86_SIMD 1
#define LB_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,bmi2")))
// Wrap AVX-512 code in these. Contraction off: an FMA happens only where the code says _mm512_fmadd_ps
// (GCC would otherwise fuse some mul + add pairs, so e.g. a - b*c can differ from the same expression
// recomputed elsewhere). GCC 12 also warns about the undefined upper halves inside its own intrinsics.
#define LB_AVX512_BEGIN                                                                          \
  _Pragma("GCC push_options") _Pragma("GCC optimize(\"fp-contract=off\")") _Pragma("GCC diagnostic push") \
      _Pragma("GCC diagnostic ignored \"-Wmaybe-uninitialized\"") _Pragma("GCC diagnostic ignored \"-Wuninitialized\"")
#define LB_AVX512_END _Pragma("GCC diagnostic pop") _Pragma("GCC pop_options")
#else
#define LB_X86_SIMD 0
#endif

namespace lb {
namespace cpu {

// The ISA cap set_cpu_isa sets: 2 = AVX-512 where the CPU has it, 1 = AVX2 + FMA at most, 0 = portable.
inline std::atomic<int> g_isa_cap{2};

#if LB_X86_SIMD
inline bool cpu_has_avx512() {
  static const bool yes = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2");
  }();
  return yes;
}
// the memory-bound kernels' AVX-512 paths: the CPU has it and set_cpu_isa has not capped it
inline bool has_avx512() { return g_isa_cap.load(std::memory_order_relaxed) >= 2 && cpu_has_avx512(); }
// LB_ISA_VARIANTS: 2 = AVX-512F, 1 = AVX2, 0 = baseline; what the CPU has, at most the cap
inline int clone_level() {
  static const int hw = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") ? 2 : __builtin_cpu_supports("avx2") ? 1 : 0;
  }();
  const int cap = g_isa_cap.load(std::memory_order_relaxed);
  return hw < cap ? hw : cap;
}
// lanes [0, min(left, 16)) of a 16-lane op
inline __mmask16 tail_mask(int64_t left) { return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u); }
LB_AVX512_BEGIN
// f32 -> bf16 bits (in the low half of each lane) as lb_f32_to_bf16: nearest even, NaN -> quiet NaN
LB_AVX512 inline __m512i bf16_bits(__m512 x) {
  const __m512i u = _mm512_castps_si512(x);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  const __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
  return _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
}
// Masked f32 load / store that use the plain instruction for a full mask: masked memory operations
// run at about half the rate on AMD cores.
LB_AVX512 inline __m512 maskz_loadu(__mmask16 m, const float* p) {
  if (m == 0xffff) return _mm512_loadu_ps(p);
  return _mm512_maskz_loadu_ps(m, p);
}
LB_AVX512 inline void mask_storeu(float* p, __mmask16 m, __m512 v) {
  if (m == 0xffff) _mm512_storeu_ps(p, v);
  else _mm512_mask_storeu_ps(p, m, v);
}
// 16 lanes of f32 or bf16 storage as f32; masked-off lanes read as 0 and are not written
LB_AVX512 inline __m512 load16(const float* p, __mmask16 m) { return maskz_loadu(m, p); }
LB_AVX512 inline __m512 load16(const uint16_t* p, __mmask16 m) {
  const __m256i h = m == 0xffff ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)) : _mm256_maskz_loadu_epi16(m, p);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
LB_AVX512 inline void store16(float* p, __mmask16 m, __m512 v) { mask_storeu(p, m, v); }
// f(i, m) over [b, e) 16 values at a time: whole vectors with the constant full mask (plain loads and
// stores once inlined), then one masked tail. A mask per vector from the bounds cost 1.04-1.22x the
// time in the memory-bound loops (axpby in place at bert-mini 1.22x, AdamW 1.04x).
template <class F>
LB_AVX512 inline void for_each16(int64_t b, int64_t e, F&& f) {
  int64_t i = b;
  for (; i + 16 <= e; i += 16) f(i, (__mmask16)0xffff);
  if (i < e) f(i, tail_mask(e - i));
}

// lo, hi words of the 32 x 32-bit products m * c in 16 lanes
LB_AVX512 inline void mulhilo16(__m512i m, __m512i c, __m512i& lo, __m512i& hi) {
  const __m512i pe = _mm512_mul_epu32(c, m);                         // even lanes: 64-bit products
  const __m512i po = _mm512_mul_epu32(_mm512_srli_epi64(c, 32), m);  // odd lanes
  lo = _mm512_mask_blend_epi32(0xAAAA, pe, _mm512_slli_epi64(po, 32));
  hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(pe, 32), po);
}
// 2^z on 16 lanes for z <= 0: 2^n 2^f with n = rint(z), f = z - n in [-1/2, 1/2] (vreduceps: no
// subtraction to wait for, and f = 0 for z = -inf, so scalef gives 0 there) and 2^f a degree-5
// polynomial (Lawson-weighted fit, max relative error 1.9e-7 in f32 Horner); NaN stays NaN.
LB_AVX512 inline __m512 exp2_16(__m512 z) {
  const __m512 n = _mm512_roundscale_ps(z, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_reduce_ps(z, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 q = _mm512_set1_ps(0.001326472731307149f);
  q = _mm512_fmadd_ps(q, f, _mm512_set1_ps(0.009671512991189957f));
  q = _mm512_fmadd_ps(q, f, _mm512_set1_ps(0.05550733581185341f));
  q = _mm512_fmadd_ps(q, f, _mm512_set1_ps(0.24022242426872253f));
  q = _mm512_fmadd_ps(q, f, _mm512_set1_ps(0.6931470036506653f));
  q = _mm512_fmadd_ps(q, f, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(q, n);
}

// Keep bits of counters 4 b .. 4 b + 63 (bit e: lb_dropout_keep(seed, 4 b + e, p)) for N runs at once,
// b = block0[n]: Philox for 16 blocks in 16 lanes, bit-identical to the scalar Philox4x32-10 of common.h
// (the block's high word carries where the low word wraps), then the four words' masks interleaved with
// pdep. The N runs are independent chains in one loop: one run's 10 rounds are a chain of dependent
// multiplies that left most of the core idle (one run at a time: ~150 cycles per 64 counters).
template <int N>
LB_AVX512 inline void dropout_keep64xN(uint64_t seed, const uint64_t* block0, float p, uint64_t* out) {
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  __m512i c0[N], c1[N], c2[N], c3[N];
#pragma GCC unroll 8
  for (int n = 0; n < N; n++) {
    const __m512i base_lo = _mm512_set1_epi32((int)(uint32_t)block0[n]);
    c0[n] = _mm512_add_epi32(base_lo, lane);
    const __mmask16 carry = _mm512_cmplt_epu32_mask(c0[n], base_lo);
    c1[n] = _mm512_mask_add_epi32(_mm512_set1_epi32((int)(uint32_t)(block0[n] >> 32)), carry,
                                  _mm512_set1_epi32((int)(uint32_t)(block0[n] >> 32)), _mm512_set1_epi32(1));
    c2[n] = c3[n] = _mm512_setzero_si512();
  }
  uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
  const __m512i m0 = _mm512_set1_epi32((int)0xD2511F53u), m1 = _mm512_set1_epi32((int)0xCD9E8D57u);
  for (int r = 0; r < 10; r++) {
    const __m512i vk0 = _mm512_set1_epi32((int)k0), vk1 = _mm512_set1_epi32((int)k1);
#pragma GCC unroll 8
    for (int n = 0; n < N; n++) {
      __m512i lo0, hi0, lo1, hi1;
      mulhilo16(m0, c0[n], lo0, hi0);
      mulhilo16(m1, c2[n], lo1, hi1);
      c0[n] = _mm512_xor_si512(_mm512_xor_si512(hi1, c1[n]), vk0);
      c2[n] = _mm512_xor_si512(_mm512_xor_si512(hi0, c3[n]), vk1);
      c1[n] = lo1;
      c3[n] = lo0;
    }
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  // uniform = (w >> 8) * 2^-24 >= p, exactly as lb_uniform; bit i of word k's mask is counter 4 i + k
  const __m512 vp = _mm512_set1_ps(p), sc = _mm512_set1_ps(1.0f / 16777216.0f);
  const auto keep = [&](__m512i w) -> uint64_t {
    return _mm512_cmp_ps_mask(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(w, 8)), sc), vp, _CMP_GE_OQ);
  };
#pragma GCC unroll 8
  for (int n = 0; n < N; n++)
    out[n] = _pdep_u64(keep(c0[n]), 0x1111111111111111ull) | _pdep_u64(keep(c1[n]), 0x2222222222222222ull) |
             _pdep_u64(keep(c2[n]), 0x4444444444444444ull) | _pdep_u64(keep(c3[n]), 0x8888888888888888ull);
}
LB_AVX512 inline uint64_t dropout_keep64(uint64_t seed, uint64_t block0, float p) {
  uint64_t w;
  dropout_keep64xN<1>(seed, &block0, p, &w);
  return w;
}
// Keep bits of consecutive counters from any start ctr0, 64 per keep_bits_next (bit j of the k-th call:
// counter ctr0 + 64 k + j): blocks of 4 counters, so a start inside a block shifts bits across words.
struct KeepBits {
  uint64_t seed, block;
  float p;
  int off;        // ctr0 % 4
  uint64_t word;  // the last block word, when off > 0
};
LB_AVX512 inline KeepBits keep_bits_start(uint64_t seed, uint64_t ctr0, float p) {
  KeepBits k{seed, ctr0 >> 2, p, (int)(ctr0 & 3), 0};
  if (k.off) {
    k.word = dropout_keep64(seed, k.block, p);
    k.block += 16;
  }
  return k;
}
// the next 64 N keep bits (bits[t]: the t-th 64), the N Philox runs interleaved
template <int N>
LB_AVX512 inline void keep_bits_next(KeepBits& k, uint64_t (&bits)[N]) {
  uint64_t blocks[N], w[N];
  for (int t = 0; t < N; t++) blocks[t] = k.block + 16 * (uint64_t)t;
  dropout_keep64xN<N>(k.seed, blocks, k.p, w);
  k.block += 16 * N;
  for (int t = 0; t < N; t++) {
    bits[t] = k.off ? (k.word >> k.off) | (w[t] << (64 - k.off)) : w[t];
    k.word = w[t];
  }
}
LB_AVX512 inline void store16(uint16_t* p, __mmask16 m, __m512 v) {
  if (m == 0xffff) _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtepi32_epi16(bf16_bits(v)));
  else _mm512_mask_cvtepi32_storeu_epi16(p, m, bf16_bits(v));
}
// dst[0..n) = src[0..n), f32 or bf16 on either side (store16 rounds as lb_f32_to_bf16: nearest even, quiet NaN)
template <class S, class D>
LB_AVX512 inline void convert16(const S* src, D* dst, int64_t n) {
  for_each16(0, n, [&](int64_t i, __mmask16 m) { store16(dst + i, m, load16(src + i, m)); });
}
// out[i] = keep(ctr0 + i) ? in[i] * s : 0 for i < n (in may alias out; f32 or bf16 storage): the dropout op
template <class T>
LB_AVX512 inline void dropout_scale(const T* in, T* out, int64_t n, uint64_t seed, uint64_t ctr0, float prob, float s) {
  const __m512 vs = _mm512_set1_ps(s);
  KeepBits kb = keep_bits_start(seed, ctr0, prob);
  int64_t i0 = 0;
  for (; i0 + 256 <= n; i0 += 256) {  // 256 counters, four Philox runs interleaved
    uint64_t bits[4];
    keep_bits_next(kb, bits);
#pragma GCC unroll 16
    for (int i = 0; i < 256; i += 16)
      store16(out + i0 + i, (__mmask16)0xffff,
              _mm512_maskz_mul_ps((__mmask16)(bits[i / 64] >> (i % 64)), load16(in + i0 + i, (__mmask16)0xffff), vs));
  }
  for (; i0 < n; i0 += 64) {
    uint64_t bits[1];
    keep_bits_next(kb, bits);
    for (int64_t i = i0; i < n && i < i0 + 64; i += 16) {
      const __mmask16 t = tail_mask(n - i);
      store16(out + i, t, _mm512_maskz_mul_ps((__mmask16)(bits[0] >> (i - i0)), load16(in + i, t), vs));
    }
  }
}
// F (nq rows, row stride ld)[i][j] *= keep(ctr0 + i row_ctr + j) ? s : 0 for j < nk <= 64: attention's
// dropout on a tile of probabilities (rows are query positions, row_ctr = T counters apart). Each row's
// 64 bits take one Philox run, or two when its first counter is not a block's first; the runs go four
// at a time.
LB_AVX512 inline void dropout_rows(float* F, int64_t ld, int nq, int nk, uint64_t seed, uint64_t ctr0, uint64_t row_ctr, float prob, float s) {
  constexpr int kMaxRows = 64;
  uint64_t blocks[2 * kMaxRows + 3], words[2 * kMaxRows + 3];
  int first[kMaxRows + 1];  // rows' first run in blocks[]
  for (int i = 0; i < nq; i += kMaxRows) {
    const int rows = nq - i < kMaxRows ? nq - i : kMaxRows;
    int nb = 0;
    for (int r = 0; r < rows; r++) {
      const uint64_t c = ctr0 + (uint64_t)(i + r) * row_ctr;
      first[r] = nb;
      blocks[nb++] = c >> 2;
      if ((c & 3) && (c & 3) + nk > 64) blocks[nb++] = (c >> 2) + 16;
    }
    first[rows] = nb;
    int b = 0;
    for (; b + 4 <= nb; b += 4) dropout_keep64xN<4>(seed, blocks + b, prob, words + b);
    for (; b < nb; b++) dropout_keep64xN<1>(seed, blocks + b, prob, words + b);
    const __m512 vs = _mm512_set1_ps(s);
    for (int r = 0; r < rows; r++) {
      const int off = (int)((ctr0 + (uint64_t)(i + r) * row_ctr) & 3);
      uint64_t bits = words[first[r]] >> off;
      if (first[r + 1] - first[r] == 2) bits |= words[first[r] + 1] << (64 - off);
      float* f = F + (int64_t)(i + r) * ld;
      for (int j = 0; j < nk; j += 16) {
        const __mmask16 t = tail_mask(nk - j);
        mask_storeu(f + j, t, _mm512_maskz_mul_ps((__mmask16)(bits >> j), maskz_loadu(t, f + j), vs));
      }
    }
  }
}
LB_AVX512_END
#else
inline bool has_avx512() { return false; }
inline int clone_level() { return 0; }
#endif

using bf16 = uint16_t;  // storage type of a bf16 value

inline float to_f32(float x) { return x; }
inline float to_f32(bf16 x) { return lb_bf16_to_f32(x); }
template <class T> inline T from_f32(float x);
template <> inline float from_f32<float>(float x) { return x; }
template <> inline bf16 from_f32<bf16>(float x) { return lb_f32_to_bf16(x); }

// exp(x) without calls or branches, so loops over it vectorise: Cephes' expf (range reduction
// x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial), ~1 ulp; 0 below -87.3 (incl. -inf), x clamped to 88.
// Used where softmax needs exp of values <= ~0; common.h math (gelu, Philox) is untouched.
inline float fast_exp(float x) {
  const bool under = x < -87.33654f;
  x = x < -87.33654f ? -87.33654f : x;
  x = x > 88.0f ? 88.0f : x;
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest (1.5 * 2^23)
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float q = 1.9875691500e-4f;
  q = q * r + 1.3981999507e-3f;
  q = q * r + 8.3334519073e-3f;
  q = q * r + 4.1665795894e-2f;
  q = q * r + 1.6666665459e-1f;
  q = q * r + 5.0000001201e-1f;
  q = q * r * r + r + 1.0f;
  const int32_t e = ((int32_t)n + 127) << 23;
  float scale;
  std::memcpy(&scale, &e, 4);
  return under ? 0.0f : q * scale;
}

// Calls f(float{}) or f(bf16{}) so one generic lambda serves both storage types.
template <class F>
inline void with_dtype(DType t, F&& f) {
  if (t == DType::BF16) f(bf16{});
  else f(float{});
}

// Scratch that grows and never shrinks: call sites hold a thread_local vector, so a steady-state step
// allocates nothing.
template <class T>
inline T* grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

// The same, starting on a cache line (64 bytes), for scratch that vector code loads and stores: a
// 64-byte access at a vector's own 16-byte alignment splits two lines. The contents are not kept when
// it grows (the start may move within the first line).
template <class T>
inline T* grow_aligned(std::vector<T>& v, size_t n) {
  static_assert(64 % sizeof(T) == 0, "grow_aligned: the element size must divide 64");
  constexpr size_t pad = 64 / sizeof(T);
  if (v.size() < n + pad) v.resize(n + pad);
  return reinterpret_cast<T*>((reinterpret_cast<uintptr_t>(v.data()) + 63) & ~(uintptr_t)63);
}

[[noreturn]] inline void index_error(const char* op, const char* what, int64_t pos, int64_t value, int64_t hi) {
  throw std::out_of_range(std::string(op) + ": " + what + "[" + std::to_string(pos) + "] = " + std::to_string(value) +
                          " is outside [0, " + std::to_string(hi) + ")");
}

// Stable counting sort of positions [0, n) by key(i) in [0, nkeys): fills order (n) and starts
// (nkeys + 1) so that key k's positions, in increasing order, are order[starts[k] .. starts[k+1]).
template <class Key>
inline void sort_by_key(int64_t n, int64_t nkeys, Key key, std::vector<int64_t>& order, std::vector<int64_t>& starts) {
  int64_t* st = grow(starts, (size_t)nkeys + 1);
  int64_t* ord = grow(order, (size_t)(n > 0 ? n : 1));
  std::memset(st, 0, sizeof(int64_t) * ((size_t)nkeys + 1));
  for (int64_t i = 0; i < n; i++) st[key(i) + 1]++;
  for (int64_t k = 0; k < nkeys; k++) st[k + 1] += st[k];
  // place with a cursor per key, reusing the next key's start as the running cursor, then shift back
  for (int64_t i = 0; i < n; i++) ord[st[key(i)]++] = i;
  for (int64_t k = nkeys; k > 0; k--) st[k] = st[k - 1];
  st[0] = 0;
}

}  // namespace cpu
}  // namespace lb
