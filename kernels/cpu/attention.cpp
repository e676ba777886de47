// attention.cpp (cpu): flash-style attention that never materialises T x T.
//   forward: one work item per (b, h, block of kQB queries); key blocks of kKB are streamed with an
//            online softmax (running max m, running sum l, unnormalised accumulator acc).
//   backward: delta = rowsum(dout * out); then one work item per (b, h): key blocks outer, query blocks
//            inner, each tile computed once for dk, dv and dq. Each output element is owned by one
//            work item and summed in a fixed order, so results are bit-identical run to run and
//            independent of the thread count. Probabilities are recomputed per tile from the saved lse.
// Scores for a tile always come from score_tile(), so forward and both backward passes see the same
// f32 scores.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "cpu_util.h"
#include "gemm_kernels.h"

namespace lb {
namespace {

using cpu::bf16;
constexpr int kQB = 32;  // queries per tile
constexpr int kKB = 64;  // keys per tile
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

struct Dims {
  int B, T, NH, D;
  int64_t ld;  // elements between consecutive tokens' rows: NH * D, or ld_qkv for q, k, v, dq, dk, dv
  int64_t row(int b, int t, int h) const { return ((int64_t)b * T + t) * ld + (int64_t)h * D; }
  Dims with_ld(int64_t l) const { return {B, T, NH, D, l}; }
};

#if LB_X86_SIMD
LB_AVX512_BEGIN
// The row loads and stores 16 values at a time: bf16 rows are widened (and rounded back) in registers,
// where the scalar loops' conversions took 1.3x the time of the f32 forward and backward.
template <class T>
LB_AVX512 void load_rows_avx512(const T* src, const Dims& dm, int b, int h, int t0, int n, float* __restrict dst) {
  for (int i = 0; i < n; i++) cpu::convert16(src + dm.row(b, t0 + i, h), dst + (int64_t)i * dm.D, dm.D);
}
// dst[0..D) = src[0..D) * scale as T
template <class T>
LB_AVX512 void store_row_avx512(const float* src, float scale, int D, T* dst) {
  const __m512 vs = _mm512_set1_ps(scale);
  cpu::for_each16(0, D, [&](int64_t c, __mmask16 m) { cpu::store16(dst + c, m, _mm512_mul_ps(cpu::maskz_loadu(m, src + c), vs)); });
}
LB_AVX512_END
#endif

// row `src` (D) of f32 values times scale, into dst as T
template <class T>
void store_row(const float* src, float scale, int D, T* dst) {
#if LB_X86_SIMD
  if (cpu::has_avx512()) return store_row_avx512(src, scale, D, dst);
#endif
  for (int c = 0; c < D; c++) dst[c] = cpu::from_f32<T>(src[c] * scale);
}

// rows (n, D) of a (B,T,NH,D) tensor starting at token t0, as f32 into dst (n, D)
template <class T>
void load_rows(const T* src, const Dims& dm, int b, int h, int t0, int n, float* __restrict dst) {
#if LB_X86_SIMD
  if (cpu::has_avx512()) return load_rows_avx512(src, dm, b, h, t0, n, dst);
#endif
  for (int i = 0; i < n; i++) {
    const T* s = src + dm.row(b, t0 + i, h);
    float* d = dst + (int64_t)i * dm.D;
    for (int c = 0; c < dm.D; c++) d[c] = cpu::to_f32(s[c]);
  }
}
// the same rows transposed into dst (D, kKB): dst[d * kKB + j]
template <class T>
void load_rows_t(const T* src, const Dims& dm, int b, int h, int t0, int n, float* __restrict dst) {
#if LB_GEMM_X86
  if constexpr (std::is_same_v<T, float>) {
    if (cpu::has_avx512()) {  // 16 rows at a time through the GEMM's in-register transpose (the scalar
      for (int j = 0; j < n; j += 16)  // loop was a fifth of the forward pass)
        gemm::tpack_avx512(src + dm.row(b, t0 + j, h), dm.ld, std::min(16, n - j), dm.D, dst + j, kKB, 16);
      return;
    }
  } else if (cpu::has_avx512()) {  // bf16: 16 rows widened into f32, then the same transpose
    thread_local std::vector<float> rows_buf;
    float* rows = cpu::grow(rows_buf, (size_t)16 * dm.D);
    for (int j = 0; j < n; j += 16) {
      const int r = std::min(16, n - j);
      load_rows(src, dm, b, h, t0 + j, r, rows);
      gemm::tpack_avx512(rows, dm.D, r, dm.D, dst + j, kKB, 16);
    }
    return;
  }
#endif
  for (int j = 0; j < n; j++) {
    const T* s = src + dm.row(b, t0 + j, h);
    for (int c = 0; c < dm.D; c++) dst[(int64_t)c * kKB + j] = cpu::to_f32(s[c]);
  }
}

// S (nq, kKB) = A (nq, D) @ BT (D, kKB)[:, :nk]. Register blocks of kR query rows x kW keys; every
// score is summed over d = 0..D-1 in order from 0, so the blocking (and the SIMD width picked at run
// time) never changes a bit. Columns nk..kW-1 of a partial block read stale but in-bounds scratch and
// are not stored.
constexpr int kR = 4, kW = 16;
static_assert(kKB % kW == 0, "key blocks are whole register blocks");
template <int R>
inline __attribute__((always_inline)) void dot_block(const float* __restrict A, const float* __restrict BT, int j0, int w,
                                                     int D, float* __restrict S) {
  float acc[R][kW];
  for (int r = 0; r < R; r++)
    for (int jj = 0; jj < kW; jj++) acc[r][jj] = 0.0f;
  for (int d = 0; d < D; d++) {
    const float* __restrict bt = BT + (int64_t)d * kKB + j0;
    for (int r = 0; r < R; r++) {
      const float a = A[(int64_t)r * D + d];
      for (int jj = 0; jj < kW; jj++) acc[r][jj] += a * bt[jj];
    }
  }
  for (int r = 0; r < R; r++)
    for (int jj = 0; jj < w; jj++) S[(int64_t)r * kKB + j0 + jj] = acc[r][jj];
}
LB_ISA_BODY void dot_tile_body(const float* __restrict A, const float* __restrict BT, int nq, int nk, int D, float* __restrict S) {
  int i = 0;
  for (; i + kR <= nq; i += kR)
    for (int j0 = 0; j0 < nk; j0 += kW) dot_block<kR>(A + (int64_t)i * D, BT, j0, std::min(kW, nk - j0), D, S + (int64_t)i * kKB);
  for (; i < nq; i++)
    for (int j0 = 0; j0 < nk; j0 += kW) dot_block<1>(A + (int64_t)i * D, BT, j0, std::min(kW, nk - j0), D, S + (int64_t)i * kKB);
}
LB_ISA_VARIANTS(void, dot_tile, (const float* __restrict A, const float* __restrict BT, int nq, int nk, int D, float* __restrict S), (A, BT, nq, nk, D, S))

// y (D) += sum_r w[r * ws] * X[r] (n rows of D), rows in order, four per pass over y; zero weights
// (masked or dropped) are skipped. Per element this is the same sequence of adds as n separate axpys.
LB_ISA_BODY void accum_rows_body(float* __restrict y, const float* w, int64_t ws, const float* __restrict X, int n, int D) {
  int r = 0;
  for (; r + 4 <= n; r += 4) {
    const float w0 = w[r * ws], w1 = w[(r + 1) * ws], w2 = w[(r + 2) * ws], w3 = w[(r + 3) * ws];
    const float* __restrict x0 = X + (int64_t)r * D;
    if (w0 != 0.0f && w1 != 0.0f && w2 != 0.0f && w3 != 0.0f) {
      const float *__restrict x1 = x0 + D, *__restrict x2 = x1 + D, *__restrict x3 = x2 + D;
      for (int c = 0; c < D; c++) y[c] = (((y[c] + w0 * x0[c]) + w1 * x1[c]) + w2 * x2[c]) + w3 * x3[c];
      continue;
    }
    const float ww[4] = {w0, w1, w2, w3};
    for (int q = 0; q < 4; q++) {
      if (ww[q] == 0.0f) continue;
      const float* __restrict x = x0 + (int64_t)q * D;
      for (int c = 0; c < D; c++) y[c] += ww[q] * x[c];
    }
  }
  for (; r < n; r++) {
    const float wr = w[r * ws];
    if (wr == 0.0f) continue;
    const float* __restrict x = X + (int64_t)r * D;
    for (int c = 0; c < D; c++) y[c] += wr * x[c];
  }
}
LB_ISA_VARIANTS(void, accum_rows, (float* __restrict y, const float* w, int64_t ws, const float* __restrict X, int n, int D), (y, w, ws, X, n, D))

// Y (m, D) += W X: Y[i] += sum_{r < n} W[i * wrs + r * wcs] X[r] (X (n, D)), r in order for each element.
void accum_tile_generic(float* Y, const float* W, int64_t wrs, int64_t wcs, const float* X, int m, int n, int D) {
  for (int i = 0; i < m; i++) accum_rows(Y + (int64_t)i * D, W + i * wrs, wcs, X, n, D);
}

#if LB_X86_SIMD
LB_AVX512_BEGIN
// S (nq, kKB) = A (nq, D) @ BT (D, kKB)[:, :nk] with R rows x 64 keys of accumulators (4 zmm per row):
// per d, 4 loads of BT feed 4R FMAs. Each score is summed over d in order from 0, as in dot_tile.
// The loops over the accumulator arrays are unrolled by pragma: without it GCC kept acc[R][NV] on the
// stack and stored all of it every iteration (attention backward 22% slower).
template <int R>
LB_AVX512 inline void dot_rows_avx512(const float* __restrict A, const float* __restrict BT, int D, float* __restrict S,
                                      const __mmask16 (&m)[4]) {
  __m512 acc[R][4];
  #pragma GCC unroll 8
  for (int r = 0; r < R; r++)
    #pragma GCC unroll 8
    for (int v = 0; v < 4; v++) acc[r][v] = _mm512_setzero_ps();
  for (int d = 0; d < D; d++) {
    const float* bt = BT + (int64_t)d * kKB;
    const __m512 b0 = _mm512_loadu_ps(bt), b1 = _mm512_loadu_ps(bt + 16), b2 = _mm512_loadu_ps(bt + 32), b3 = _mm512_loadu_ps(bt + 48);
    #pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
      const __m512 a = _mm512_set1_ps(A[(int64_t)r * D + d]);
      acc[r][0] = _mm512_fmadd_ps(a, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(a, b1, acc[r][1]);
      acc[r][2] = _mm512_fmadd_ps(a, b2, acc[r][2]);
      acc[r][3] = _mm512_fmadd_ps(a, b3, acc[r][3]);
    }
  }
  #pragma GCC unroll 8
  for (int r = 0; r < R; r++)
    #pragma GCC unroll 8
    for (int v = 0; v < 4; v++)
      if (m[v]) cpu::mask_storeu(S + (int64_t)r * kKB + 16 * v, m[v], acc[r][v]);
}
static_assert(kKB == 64, "dot_tile_avx512 holds a key tile in 4 zmm per row");
LB_AVX512 void dot_tile_avx512(const float* __restrict A, const float* __restrict BT, int nq, int nk, int D, float* __restrict S) {
  __mmask16 m[4];
  #pragma GCC unroll 8
  for (int v = 0; v < 4; v++) m[v] = 16 * v < nk ? cpu::tail_mask(nk - 16 * v) : (__mmask16)0;
  int i = 0;
  for (; i + 6 <= nq; i += 6) dot_rows_avx512<6>(A + (int64_t)i * D, BT, D, S + (int64_t)i * kKB, m);
  const float* a = A + (int64_t)i * D;
  float* st = S + (int64_t)i * kKB;
  switch (nq - i) {
    case 5: dot_rows_avx512<5>(a, BT, D, st, m); break;
    case 4: dot_rows_avx512<4>(a, BT, D, st, m); break;
    case 3: dot_rows_avx512<3>(a, BT, D, st, m); break;
    case 2: dot_rows_avx512<2>(a, BT, D, st, m); break;
    case 1: dot_rows_avx512<1>(a, BT, D, st, m); break;
    default: break;
  }
}

// accum_tile for R rows of Y and up to 64 columns [c0, c0 + 16 NV): accumulators stay in registers over
// all n rows of X (per r: NV loads of X feed R * NV FMAs).
template <int R, int NV>
LB_AVX512 inline void accum_rows_avx512(float* Y, const float* W, int64_t wrs, int64_t wcs, const float* X, int n, int D,
                                        int c0, const __mmask16 (&m)[4]) {
  __m512 acc[R][NV];
  #pragma GCC unroll 8
  for (int r = 0; r < R; r++)
    #pragma GCC unroll 8
    for (int v = 0; v < NV; v++) acc[r][v] = cpu::maskz_loadu(m[v], Y + (int64_t)r * D + c0 + 16 * v);
  for (int k = 0; k < n; k++) {
    __m512 x[NV];
    #pragma GCC unroll 8
    for (int v = 0; v < NV; v++) x[v] = cpu::maskz_loadu(m[v], X + (int64_t)k * D + c0 + 16 * v);
    #pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
      const __m512 w = _mm512_set1_ps(W[r * wrs + k * wcs]);
      #pragma GCC unroll 8
      for (int v = 0; v < NV; v++) acc[r][v] = _mm512_fmadd_ps(w, x[v], acc[r][v]);
    }
  }
  #pragma GCC unroll 8
  for (int r = 0; r < R; r++)
    #pragma GCC unroll 8
    for (int v = 0; v < NV; v++) cpu::mask_storeu(Y + (int64_t)r * D + c0 + 16 * v, m[v], acc[r][v]);
}
template <int NV>
LB_AVX512 void accum_cols_avx512(float* Y, const float* W, int64_t wrs, int64_t wcs, const float* X, int m, int n, int D,
                                 int c0, const __mmask16 (&mk)[4]) {
  int i = 0;
  for (; i + 6 <= m; i += 6) accum_rows_avx512<6, NV>(Y + (int64_t)i * D, W + i * wrs, wrs, wcs, X, n, D, c0, mk);
  // the last 1-5 rows in one pass over X (64 = 10 x 6 + 4, 32 = 5 x 6 + 2)
  float* y = Y + (int64_t)i * D;
  const float* w = W + i * wrs;
  switch (m - i) {
    case 5: accum_rows_avx512<5, NV>(y, w, wrs, wcs, X, n, D, c0, mk); break;
    case 4: accum_rows_avx512<4, NV>(y, w, wrs, wcs, X, n, D, c0, mk); break;
    case 3: accum_rows_avx512<3, NV>(y, w, wrs, wcs, X, n, D, c0, mk); break;
    case 2: accum_rows_avx512<2, NV>(y, w, wrs, wcs, X, n, D, c0, mk); break;
    case 1: accum_rows_avx512<1, NV>(y, w, wrs, wcs, X, n, D, c0, mk); break;
    default: break;
  }
}
LB_AVX512 void accum_tile_avx512(float* Y, const float* W, int64_t wrs, int64_t wcs, const float* X, int m, int n, int D) {
  for (int c0 = 0; c0 < D; c0 += 64) {
    __mmask16 mk[4];
    for (int v = 0; v < 4; v++) mk[v] = c0 + 16 * v < D ? cpu::tail_mask(D - c0 - 16 * v) : (__mmask16)0;
    const int nv = std::min(4, (D - c0 + 15) / 16);
    if (nv == 4) accum_cols_avx512<4>(Y, W, wrs, wcs, X, m, n, D, c0, mk);
    else if (nv == 3) accum_cols_avx512<3>(Y, W, wrs, wcs, X, m, n, D, c0, mk);
    else if (nv == 2) accum_cols_avx512<2>(Y, W, wrs, wcs, X, m, n, D, c0, mk);
    else accum_cols_avx512<1>(Y, W, wrs, wcs, X, m, n, D, c0, mk);
  }
}
LB_AVX512_END
#endif


// s[j] = exp(s[j] - shift) for j < n (masked -inf -> 0); returns their sum (8 lanes, fixed order)
LB_ISA_BODY float exp_shift_sum_body(float* __restrict s, int n, float shift) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int j = 0;
  for (; j + 8 <= n; j += 8)
    for (int l = 0; l < 8; l++) {
      s[j + l] = cpu::fast_exp(s[j + l] - shift);
      acc[l] += s[j + l];
    }
  for (int l = 0; j < n; j++, l++) {
    s[j] = cpu::fast_exp(s[j] - shift);
    acc[l] += s[j];
  }
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}
LB_ISA_VARIANTS(float, exp_shift_sum, (float* __restrict s, int n, float shift), (s, n, shift))

// f[j] *= keep(ctr0 + j) ? inv_keep : 0 for j < n: Philox over consecutive counters vectorises here
LB_ISA_BODY void apply_dropout_body(float* __restrict f, int n, uint64_t seed, uint64_t ctr0, float prob, float inv_keep) {
  for (int j = 0; j < n; j++) f[j] *= lb_dropout_keep(seed, ctr0 + (uint64_t)j, prob) ? inv_keep : 0.0f;
}
LB_ISA_VARIANTS(void, apply_dropout, (float* __restrict f, int n, uint64_t seed, uint64_t ctr0, float prob, float inv_keep), (f, n, seed, ctr0, prob, inv_keep))

// S (nq, kKB)[:, :nk] *= scale; masked keys (mask_row[j] == 0, mask_row may be null) become -inf
void scale_mask_rows(float* S, int nq, int nk, float scale, const int32_t* mask_row) {
  for (int i = 0; i < nq; i++) {
    float* s = S + (int64_t)i * kKB;
    for (int j = 0; j < nk; j++) s[j] *= scale;
    if (mask_row)
      for (int j = 0; j < nk; j++)
        if (mask_row[j] == 0) s[j] = kNegInf;
  }
}
// max(init, s[0..n)) (NaN scores are skipped)
float row_max(const float* s, int n, float init) {
  for (int j = 0; j < n; j++) init = s[j] > init ? s[j] : init;
  return init;
}

#if LB_X86_SIMD
LB_AVX512_BEGIN
LB_AVX512 void scale_mask_rows_avx512(float* S, int nq, int nk, float scale, const int32_t* mask_row) {
  __mmask16 t[4], live[4];  // columns in the tile; of those, the live keys
  for (int v = 0; v < 4; v++) {
    t[v] = 16 * v < nk ? cpu::tail_mask(nk - 16 * v) : (__mmask16)0;
    live[v] = mask_row ? _mm512_mask_cmpneq_epi32_mask(t[v], _mm512_maskz_loadu_epi32(t[v], mask_row + 16 * v), _mm512_setzero_si512()) : t[v];
  }
  const __m512 sc = _mm512_set1_ps(scale), ninf = _mm512_set1_ps(kNegInf);
  for (int i = 0; i < nq; i++) {
    float* s = S + (int64_t)i * kKB;
#pragma GCC unroll 4
    for (int v = 0; v < 4; v++)
      if (t[v]) cpu::mask_storeu(s + 16 * v, t[v], _mm512_mask_blend_ps(live[v], ninf, _mm512_mul_ps(cpu::maskz_loadu(t[v], s + 16 * v), sc)));
  }
}
LB_AVX512 float row_max_avx512(const float* s, int n, float init) {
  __m512 m = _mm512_set1_ps(init);
  for (int j = 0; j < n; j += 16) {
    const __mmask16 t = cpu::tail_mask(n - j);
    m = _mm512_mask_max_ps(m, t, _mm512_maskz_loadu_ps(t, s + j), m);  // NaN in s: keeps m
  }
  return _mm512_reduce_max_ps(m);
}
// exp_shift_sum as 2^((s - shift) log2e) (cpu::exp2_16: 9 vector operations, where a bit-for-bit copy
// of the scalar fast_exp took 24 and a fifth of the forward's time); masked -inf scores give exactly 0.
// Forward and backward both take their probabilities from here. The sum runs in 16 lanes.
LB_AVX512 float exp_shift_sum_avx512(float* s, int n, float shift) {
  const __m512 sh = _mm512_set1_ps(shift), l2e = _mm512_set1_ps(1.44269504088896341f);
  __m512 acc = _mm512_setzero_ps();
  for (int j = 0; j < n; j += 16) {
    const __mmask16 t = cpu::tail_mask(n - j);
    const __m512 e = _mm512_maskz_mov_ps(t, cpu::exp2_16(_mm512_mul_ps(_mm512_sub_ps(cpu::maskz_loadu(t, s + j), sh), l2e)));
    cpu::mask_storeu(s + j, t, e);
    acc = _mm512_add_ps(acc, e);
  }
  return _mm512_reduce_add_ps(acc);
}
// dropout_rows_generic through cpu::dropout_rows (64 counters per Philox run, four runs interleaved; bit-identical masks)
LB_AVX512 void dropout_rows_avx512(float* f, int64_t ld, int nq, int nk, uint64_t seed, uint64_t ctr0, uint64_t row_ctr, float prob, float inv_keep) {
  cpu::dropout_rows(f, ld, nq, nk, seed, ctr0, row_ctr, prob, inv_keep);
}
LB_AVX512_END
#endif
// rows i < nq of F (row stride ld): apply_dropout with counters from ctr0 + i row_ctr
void dropout_rows_generic(float* f, int64_t ld, int nq, int nk, uint64_t seed, uint64_t ctr0, uint64_t row_ctr, float prob, float inv_keep) {
  for (int i = 0; i < nq; i++) apply_dropout(f + (int64_t)i * ld, nk, seed, ctr0 + (uint64_t)i * row_ctr, prob, inv_keep);
}
// The tile kernels: AVX-512 where the CPU has it (register-blocked products with FMA, R rows x 64 columns of
// accumulators; 16-lane exp and Philox), else the portable loops above (an AVX2 clone; same order of adds,
// no FMA). Called through these pointers, so never inlined: inlined into forward_impl, the exp made its
// row loop compile 35% slower.
using DotTileFn = void (*)(const float*, const float*, int, int, int, float*);
using AccumTileFn = void (*)(float*, const float*, int64_t, int64_t, const float*, int, int, int);
using ExpTileFn = float (*)(float*, int, float);                                   // s[j] = exp(s[j] - shift), returns the sum
using DropoutTileFn = void (*)(float*, int64_t, int, int, uint64_t, uint64_t, uint64_t, float, float);  // dropout_rows
using ScaleMaskFn = void (*)(float*, int, int, float, const int32_t*);              // scale_mask_rows
using MaxFn = float (*)(const float*, int, float);                                  // row_max
struct TileKernels {
  DotTileFn dot;
  AccumTileFn accum;
  ExpTileFn exp;
  DropoutTileFn dropout;
  ScaleMaskFn scale_mask;
  MaxFn max;
};
const TileKernels& tile_kernels() {
  static const TileKernels k = [] {
#if LB_X86_SIMD
    if (cpu::has_avx512())
      return TileKernels{&dot_tile_avx512, &accum_tile_avx512, &exp_shift_sum_avx512, &dropout_rows_avx512, &scale_mask_rows_avx512, &row_max_avx512};
#endif
    return TileKernels{&dot_tile, &accum_tile_generic, &exp_shift_sum, &dropout_rows_generic, &scale_mask_rows, &row_max};
  }();
  return k;
}

// scaled, masked scores: masked keys get -inf
void score_tile(const float* Q, const float* KT, int nq, int nk, int D, float scale, const int32_t* mask_row, float* S) {
  tile_kernels().dot(Q, KT, nq, nk, D, S);
  tile_kernels().scale_mask(S, nq, nk, scale, mask_row);
}

inline uint64_t drop_ctr(const AttentionParams& p, int b, int h, int i, int j) {
  return p.offset + (((uint64_t)b * p.NH + h) * (uint64_t)p.T + (uint64_t)i) * (uint64_t)p.T + (uint64_t)j;
}

// Per-thread copies of one head's rows in tile layout, reloaded only when the (b, h) of the work item
// changes: the work items of a parallel_for chunk are consecutive, so a head's query (or key) blocks
// share one load instead of converting and transposing the same K/V tiles once per block. `kinds` lists
// the layouts wanted, each as nb tiles of kKB rows: 't' = (D, kKB) transposed, 'r' = (kKB, D) rows.
template <class T, int N>
struct HeadTiles {
  const T* src[N];
  char kind[N];
  int64_t ld[N];  // each source's row stride
  int b = -1, h = -1;
  float* tiles = nullptr;
  int64_t tile = 0;  // floats per tile (kKB * D)
  // tile `kb` of layout `which` for head (b, h), loading the head's tiles first if needed
  const float* get(const Dims& dm, int b_, int h_, int which, int kb, std::vector<float>& buf) {
    const int nb = (dm.T + kKB - 1) / kKB;
    if (b_ != b || h_ != h) {
      tile = (int64_t)kKB * dm.D;
      tiles = cpu::grow(buf, (size_t)(N * nb * tile));
      for (int w = 0; w < N; w++)
        for (int t = 0; t < nb; t++) {
          const int j0 = t * kKB, n = std::min(kKB, dm.T - j0);
          float* dst = tiles + (w * nb + t) * tile;
          if (kind[w] == 't') load_rows_t(src[w], dm.with_ld(ld[w]), b_, h_, j0, n, dst);
          else load_rows(src[w], dm.with_ld(ld[w]), b_, h_, j0, n, dst);
        }
      b = b_;
      h = h_;
    }
    return tiles + (which * nb + kb) * tile;
  }
};

template <class T>
void forward_impl(const AttentionParams& p) {
  const Dims dm{p.B, p.T, p.NH, p.D, (int64_t)p.NH * p.D};  // out, dout
  const Dims dm_qkv = dm.with_ld(p.ld_qkv);                 // q, k, v, dq, dk, dv
  const int D = p.D, nqb = (p.T + kQB - 1) / kQB;
  const T* q = static_cast<const T*>(p.q);
  const T* k = static_cast<const T*>(p.k);
  const T* v = static_cast<const T*>(p.v);
  T* out = static_cast<T*>(p.out);
  const bool dropout = p.dropout_p > 0.0f;
  const float inv_keep = 1.0f / (1.0f - p.dropout_p);
  const TileKernels& tk = tile_kernels();
  parallel_for((int64_t)p.B * p.NH * nqb, 1, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> buf, head_buf;
    HeadTiles<T, 2> heads{{k, v}, {'t', 'r'}, {p.ld_qkv, p.ld_qkv}};  // this head's K^T and V tiles
    float* qt = cpu::grow(buf, (size_t)kQB * D * 2 + kQB * kKB + 2 * kQB);
    float* acc = qt + kQB * D;   // (kQB, D) unnormalised output
    float* S = acc + kQB * D;    // (kQB, kKB) scores, then probabilities
    float* m = S + kQB * kKB;    // (kQB) running max
    float* l = m + kQB;          // (kQB) running sum of exp(s - m)
    for (int64_t item = begin; item < end; item++) {
      const int qb = (int)(item % nqb);
      const int h = (int)((item / nqb) % p.NH);
      const int b = (int)(item / ((int64_t)nqb * p.NH));
      const int i0 = qb * kQB, nq = std::min(kQB, p.T - i0);
      load_rows(q, dm_qkv, b, h, i0, nq, qt);
      for (int i = 0; i < nq * D; i++) acc[i] = 0.0f;
      for (int i = 0; i < nq; i++) { m[i] = kNegInf; l[i] = 0.0f; }
      for (int j0 = 0; j0 < p.T; j0 += kKB) {
        const int nk = std::min(kKB, p.T - j0);
        const int32_t* mask_row = p.key_mask ? p.key_mask + (int64_t)b * p.T + j0 : nullptr;
        if (mask_row) {  // a fully padded key block contributes nothing
          bool any = false;
          for (int j = 0; j < nk && !any; j++) any = mask_row[j] != 0;
          if (!any) continue;
        }
        const float* kT = heads.get(dm, b, h, 0, j0 / kKB, head_buf);  // (D, kKB)
        const float* vt = heads.get(dm, b, h, 1, j0 / kKB, head_buf);  // (kKB, D)
        score_tile(qt, kT, nq, nk, D, p.scale, mask_row, S);
        for (int i = 0; i < nq; i++) {
          float* s = S + (int64_t)i * kKB;
          const float mx = tk.max(s, nk, m[i]);
          if (mx == kNegInf) {  // every key so far is padding: this block adds nothing to the row
            for (int j = 0; j < nk; j++) s[j] = 0.0f;
            continue;
          }
          // exp(-inf) = 0 on the first live block; an unchanged max needs no exp (fast_exp(0) is 1)
          const float corr = mx == m[i] ? 1.0f : cpu::fast_exp(m[i] - mx);
          const float sum = tk.exp(s, nk, mx);  // s becomes exp(s - mx); masked -> 0
          l[i] = l[i] * corr + sum;
          m[i] = mx;
          float* a = acc + (int64_t)i * D;
          if (corr != 1.0f)
            for (int c = 0; c < D; c++) a[c] *= corr;
        }
        if (dropout)  // S becomes the dropped, rescaled weights (l above keeps the undropped sums)
          tk.dropout(S, kKB, nq, nk, p.seed, drop_ctr(p, b, h, i0, j0), (uint64_t)p.T, p.dropout_p, inv_keep);
        tk.accum(acc, S, kKB, 1, vt, nq, nk, D);  // acc_i += sum_j s_ij v_j
      }
      for (int i = 0; i < nq; i++) {
        T* o = out + dm.row(b, i0 + i, h);
        float* lse = p.lse + ((int64_t)b * p.NH + h) * p.T + i0 + i;
        if (l[i] == 0.0f) {  // all keys are padding: out = 0, lse = -inf
          for (int c = 0; c < D; c++) o[c] = cpu::from_f32<T>(0.0f);
          *lse = kNegInf;
          continue;
        }
        store_row(acc + (int64_t)i * D, 1.0f / l[i], D, o);
        *lse = m[i] + std::log(l[i]);
      }
    }
  });
}

// One (query tile x key tile) of the backward: probabilities P from lse, dropped P', and
// dS = P (dP' * keep / (1-p) - delta). On return S holds P' and dP holds dS (both (nq, kKB)).
void backward_tile(const AttentionParams& p, int b, int h, int i0, int nq, int j0, int nk, const float* qt,
                   const float* dot, const float* kT, const float* vT, const float* lse, const float* delta, float* S,
                   float* dP) {
  const int32_t* mask_row = p.key_mask ? p.key_mask + (int64_t)b * p.T + j0 : nullptr;
  score_tile(qt, kT, nq, nk, p.D, p.scale, mask_row, S);
  tile_kernels().dot(dot, vT, nq, nk, p.D, dP);  // dout_i . v_j
  const bool dropout = p.dropout_p > 0.0f;
  const float inv_keep = 1.0f / (1.0f - p.dropout_p);
  // 1/(1-p) or 0 per (query, key) of the tile, all rows' Philox runs at once; without dropout every row
  // reads one row of ones
  float keep[kQB * kKB];
  const int keep_ld = dropout ? kKB : 0;
  for (int i = 0; i < (dropout ? nq : 1); i++)
    for (int j = 0; j < nk; j++) keep[i * kKB + j] = 1.0f;
  if (dropout) tile_kernels().dropout(keep, kKB, nq, nk, p.seed, drop_ctr(p, b, h, i0, j0), (uint64_t)p.T, p.dropout_p, inv_keep);
  for (int i = 0; i < nq; i++) {
    float* s = S + (int64_t)i * kKB;
    float* dp = dP + (int64_t)i * kKB;
    const float* kr = keep + (int64_t)i * keep_ld;
    const float L = lse[i0 + i], dl = delta[i0 + i];
    if (L == kNegInf) {  // all-padding row: no gradient flows
      for (int j = 0; j < nk; j++) { s[j] = 0.0f; dp[j] = 0.0f; }
      continue;
    }
    tile_kernels().exp(s, nk, L);  // s = P = exp(s - lse); masked -> 0
    for (int j = 0; j < nk; j++) {
      const float P = s[j];
      s[j] = P * kr[j];
      dp[j] = P * (dp[j] * kr[j] - dl);
    }
  }
}

template <class T>
void backward_impl(const AttentionParams& p) {
  const Dims dm{p.B, p.T, p.NH, p.D, (int64_t)p.NH * p.D};  // out, dout
  const Dims dm_qkv = dm.with_ld(p.ld_qkv);                 // q, k, v, dq, dk, dv
  const int D = p.D, T_ = p.T;
  const T* q = static_cast<const T*>(p.q);
  const T* k = static_cast<const T*>(p.k);
  const T* v = static_cast<const T*>(p.v);
  const T* out = static_cast<const T*>(p.out);
  const T* dout = static_cast<const T*>(p.dout);
  T* dq = static_cast<T*>(p.dq);
  T* dk = static_cast<T*>(p.dk);
  T* dv = static_cast<T*>(p.dv);

  // delta (B,NH,T) = rowsum(dout * out)
  parallel_for((int64_t)p.B * T_ * p.NH, 256, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; r++) {
      const int h = (int)(r % p.NH);
      const int64_t bt = r / p.NH;
      const T* o = out + r * D;
      const T* g = dout + r * D;
      float s = 0.0f;
      for (int c = 0; c < D; c++) s += cpu::to_f32(o[c]) * cpu::to_f32(g[c]);
      p.delta[((bt / T_) * p.NH + h) * T_ + bt % T_] = s;
    }
  });

  // dq, dk, dv: one work item per (b, h). Key blocks outer, query blocks inner: each (query tile x key
  // tile) is computed once and feeds dk, dv (this key block's accumulators) and dq (the head's, summed
  // over key blocks in order, as a per-query-block loop over key blocks would).
  const int nkb = (T_ + kKB - 1) / kKB;
  parallel_for((int64_t)p.B * p.NH, 1, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> buf, head_buf;
    HeadTiles<T, 2> heads{{q, dout}, {'r', 'r'}, {p.ld_qkv, dm.ld}};  // this head's q and dout rows (consecutive tiles)
    float* kT = cpu::grow(buf, (size_t)kKB * D * 5 + 2 * (size_t)kQB * kKB + (size_t)nkb * kKB * D);  // (D, kKB)
    float* vT = kT + kKB * D;         // (D, kKB)
    float* kt = vT + kKB * D;         // (kKB, D) k rows
    float* dk_acc = kt + kKB * D;     // (kKB, D)
    float* dv_acc = dk_acc + kKB * D; // (kKB, D)
    float* S = dv_acc + kKB * D;      // (kQB, kKB)
    float* dP = S + kQB * kKB;        // (kQB, kKB)
    float* dq_acc = dP + kQB * kKB;   // (T, D), rows padded to whole key tiles
    for (int64_t item = begin; item < end; item++) {
      const int h = (int)(item % p.NH);
      const int b = (int)(item / p.NH);
      const float* lse = p.lse + ((int64_t)b * p.NH + h) * T_;
      const float* delta = p.delta + ((int64_t)b * p.NH + h) * T_;
      const float* q_rows = heads.get(dm, b, h, 0, 0, head_buf);     // (T, D)
      const float* dout_rows = heads.get(dm, b, h, 1, 0, head_buf);  // (T, D)
      for (int64_t i = 0; i < (int64_t)T_ * D; i++) dq_acc[i] = 0.0f;
      for (int kb = 0; kb < nkb; kb++) {
        const int j0 = kb * kKB, nk = std::min(kKB, T_ - j0);
        for (int i = 0; i < nk * D; i++) { dk_acc[i] = 0.0f; dv_acc[i] = 0.0f; }
        load_rows_t(k, dm_qkv, b, h, j0, nk, kT);
        load_rows_t(v, dm_qkv, b, h, j0, nk, vT);
        load_rows(k, dm_qkv, b, h, j0, nk, kt);
        for (int i0 = 0; i0 < T_; i0 += kQB) {
          const int nq = std::min(kQB, T_ - i0);
          const float* qt = q_rows + (int64_t)i0 * D;     // (nq, D)
          const float* dot = dout_rows + (int64_t)i0 * D; // (nq, D)
          backward_tile(p, b, h, i0, nq, j0, nk, qt, dot, kT, vT, lse, delta, S, dP);
          tile_kernels().accum(dv_acc, S, 1, kKB, dot, nk, nq, D);  // dv_j += sum_i P'_ij dout_i
          tile_kernels().accum(dk_acc, dP, 1, kKB, qt, nk, nq, D);  // dk_j += sum_i dS_ij q_i
          tile_kernels().accum(dq_acc + (int64_t)i0 * D, dP, kKB, 1, kt, nq, nk, D);  // dq_i += sum_j dS_ij k_j
        }
        for (int j = 0; j < nk; j++) {
          store_row(dk_acc + (int64_t)j * D, p.scale, D, dk + dm_qkv.row(b, j0 + j, h));
          store_row(dv_acc + (int64_t)j * D, 1.0f, D, dv + dm_qkv.row(b, j0 + j, h));
        }
      }
      for (int i = 0; i < T_; i++) store_row(dq_acc + (int64_t)i * D, p.scale, D, dq + dm_qkv.row(b, i, h));
    }
  });
}

}  // namespace

void attention_forward_cpu(const AttentionParams& p) {
  cpu::with_dtype(p.dtype, [&](auto tag) { forward_impl<decltype(tag)>(p); });
}
// backward (activation grads =): dq, dk, dv written; delta (B,NH,T) scratch filled.
void attention_backward_cpu(const AttentionParams& p) {
  cpu::with_dtype(p.dtype, [&](auto tag) { backward_impl<decltype(tag)>(p); });
}

}  // namespace lb
