// layernorm.cpp (cpu): fused residual add + layernorm, one row per task, the row held in f32 scratch.
// Mean and variance are summed in 8 f32 lanes around a pivot (the row's first value), so rows with a
// large mean (1e4) and small variance keep their precision. The backward computes dx per row and
// reduces dgamma/dbeta over fixed chunks of kRowChunk rows, then over chunks in order: deterministic
// and independent of the thread count. With AVX-512 each row streams through memory once (forward:
// x, residual -> sum, out; backward: x, dout -> dx); the other passes run over a copy in cache (in
// registers for forward rows of 64-256 values; L1 for backward rows of up to 1 KB, 8 at a time).
#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu_util.h"

namespace lb {
namespace {

using cpu::bf16;
// 128 rather than 32: with two threads at 4096 x 256 the backward took 0.8x the time (4096 x 768: 0.86x),
// one thread unchanged; a quarter of the partial sums to write and then gather from both cores.
constexpr int kRowChunk = 128;

// sum of x[0..n) in 8 lanes (fixed order), then the lanes pairwise
inline float lane_sum(const float* __restrict x, int n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; l++) acc[l] += x[i + l];
  for (int l = 0; i < n; i++, l++) acc[l] += x[i];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

template <class T>
void forward_impl(const LayernormParams& p) {
  const int C = p.cols;
  const T* x = static_cast<const T*>(p.x);
  const T* res = static_cast<const T*>(p.residual);
  T* sum = static_cast<T*>(p.sum);
  T* out = static_cast<T*>(p.out);
  const int64_t grain = std::max<int64_t>(1, 16384 / C);
  parallel_for(p.rows, grain, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> buf;
    float* s = cpu::grow(buf, (size_t)C * 2);  // (C) LN input in f32
    float* t = s + C;                           // (C) squares of the centred values
    for (int64_t r = begin; r < end; r++) {
      const T* xr = x + r * C;
      if (res) {
        const T* rr = res + r * C;
        for (int c = 0; c < C; c++) s[c] = cpu::to_f32(xr[c]) + cpu::to_f32(rr[c]);
        if (sum) {
          T* sr = sum + r * C;
          for (int c = 0; c < C; c++) sr[c] = cpu::from_f32<T>(s[c]);
        }
      } else {
        for (int c = 0; c < C; c++) s[c] = cpu::to_f32(xr[c]);
      }
      // centre around the pivot, then around the mean offset: s - mean is formed without ever rounding
      // the mean to f32 (at mean 1e4 that rounding alone is 5e-4, i.e. 5e-3 of a 0.1 std)
      const float pivot = s[0];
      for (int c = 0; c < C; c++) s[c] -= pivot;
      const float dmean = lane_sum(s, C) / (float)C;
      for (int c = 0; c < C; c++) { s[c] -= dmean; t[c] = s[c] * s[c]; }
      const float var = lane_sum(t, C) / (float)C;
      const float rstd = 1.0f / std::sqrt(var + p.eps);
      p.mean[r] = pivot + dmean;
      p.rstd[r] = rstd;
      T* o = out + r * C;
      for (int c = 0; c < C; c++) o[c] = cpu::from_f32<T>(s[c] * rstd * p.gamma[c] + p.beta[c]);
    }
  });
}

template <class T>
void backward_impl(const LayernormParams& p) {
  const int C = p.cols;
  const T* x = static_cast<const T*>(p.x);
  const T* dout = static_cast<const T*>(p.dout);
  T* dx = static_cast<T*>(p.dx);
  const int64_t nchunks = ((int64_t)p.rows + kRowChunk - 1) / kRowChunk;
  // partial dgamma / dbeta per chunk (nchunks, 2, C), owned by the calling thread
  thread_local std::vector<float> partial_buf;
  float* partial = cpu::grow(partial_buf, (size_t)nchunks * 2 * C);
  parallel_for(nchunks, 1, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> buf;
    float* xhat = cpu::grow(buf, (size_t)C * 3);  // (C)
    float* g = xhat + C;                           // (C) dout in f32
    float* t = g + C;                              // (C) products to sum
    for (int64_t ch = begin; ch < end; ch++) {
      float* dg = partial + ch * 2 * C;
      float* db = dg + C;
      for (int c = 0; c < C; c++) { dg[c] = 0.0f; db[c] = 0.0f; }
      const int64_t r1 = std::min<int64_t>(p.rows, (ch + 1) * kRowChunk);
      for (int64_t r = ch * kRowChunk; r < r1; r++) {
        const float mean = p.mean[r], rstd = p.rstd[r];
        const T* xr = x + r * C;
        const T* gr = dout + r * C;
        for (int c = 0; c < C; c++) {
          xhat[c] = (cpu::to_f32(xr[c]) - mean) * rstd;
          g[c] = cpu::to_f32(gr[c]);
          dg[c] += g[c] * xhat[c];
          db[c] += g[c];
        }
        for (int c = 0; c < C; c++) t[c] = g[c] * p.gamma[c];
        const float mean_dxhat = lane_sum(t, C) / (float)C;
        for (int c = 0; c < C; c++) t[c] *= xhat[c];
        const float mean_dxhat_xhat = lane_sum(t, C) / (float)C;
        T* o = dx + r * C;
        for (int c = 0; c < C; c++)
          o[c] = cpu::from_f32<T>(rstd * (g[c] * p.gamma[c] - mean_dxhat - xhat[c] * mean_dxhat_xhat));
      }
    }
  });
  // dgamma, dbeta += sum over chunks in chunk order (parameter grads +=)
  parallel_for(C, 256, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; c++) {
      float sg = 0.0f, sb = 0.0f;
      for (int64_t ch = 0; ch < nchunks; ch++) {
        sg += partial[ch * 2 * C + c];
        sb += partial[ch * 2 * C + C + c];
      }
      p.dgamma[c] += sg;
      p.dbeta[c] += sb;
    }
  });
}

#if LB_X86_SIMD
LB_AVX512_BEGIN
using cpu::load16;
using cpu::store16;
using cpu::tail_mask;

// Forward, one row per iteration: pass 1 reads x (+ residual), writes sum and accumulates the sum and
// sum of squares of d = s - pivot (pivot = the row's first value); pass 2 reloads the row from L1 and
// writes out. var = E[d^2] - E[d]^2 loses at most 2 bits while E[d]^2 <= 3/4 E[d^2]; rows beyond that
// (the pivot far from the mean) take an exact extra pass over (d - E[d])^2.
// x + residual (residual may be null), in f32
template <class T>
LB_AVX512 inline __m512 row16(const T* xr, const T* rr, int j, __mmask16 m) {
  const __m512 v = load16(xr + j, m);
  return rr ? _mm512_add_ps(v, load16(rr + j, m)) : v;
}

template <class T>
LB_AVX512 void forward_rows_avx512(const LayernormParams& p, int64_t begin, int64_t end) {
  const int C = p.cols;
  const T* x = static_cast<const T*>(p.x);
  const T* res = static_cast<const T*>(p.residual);
  T* sum = static_cast<T*>(p.sum);
  T* out = static_cast<T*>(p.out);
  for (int64_t r = begin; r < end; r++) {
    const T* xr = x + r * C;
    const T* rr = res ? res + r * C : nullptr;
    const float pivot = rr ? cpu::to_f32(xr[0]) + cpu::to_f32(rr[0]) : cpu::to_f32(xr[0]);
    const __m512 vp = _mm512_set1_ps(pivot);
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), q0 = _mm512_setzero_ps(), q1 = _mm512_setzero_ps();
    int j = 0;
    for (; j + 32 <= C; j += 32) {
      const __m512 s0 = row16(xr, rr, j, 0xffff), s1 = row16(xr, rr, j + 16, 0xffff);
      if (sum) { store16(sum + r * C + j, 0xffff, s0); store16(sum + r * C + j + 16, 0xffff, s1); }
      const __m512 d0 = _mm512_sub_ps(s0, vp), d1 = _mm512_sub_ps(s1, vp);
      a0 = _mm512_add_ps(a0, d0); q0 = _mm512_fmadd_ps(d0, d0, q0);
      a1 = _mm512_add_ps(a1, d1); q1 = _mm512_fmadd_ps(d1, d1, q1);
    }
    for (; j < C; j += 16) {
      const __mmask16 m = tail_mask(C - j);
      const __m512 s0 = row16(xr, rr, j, m);
      if (sum) store16(sum + r * C + j, m, s0);
      const __m512 d0 = _mm512_maskz_sub_ps(m, s0, vp);
      a0 = _mm512_add_ps(a0, d0); q0 = _mm512_fmadd_ps(d0, d0, q0);
    }
    const float dmean = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1)) / (float)C;
    const float msq = _mm512_reduce_add_ps(_mm512_add_ps(q0, q1)) / (float)C;
    const __m512 vm = _mm512_set1_ps(dmean);
    float var;
    if (dmean * dmean <= 0.75f * msq) {
      var = msq - dmean * dmean;
    } else {  // s - mean is formed without ever rounding the mean to f32
      q0 = _mm512_setzero_ps();
      for (j = 0; j < C; j += 16) {
        const __mmask16 m = tail_mask(C - j);
        const __m512 d = _mm512_maskz_sub_ps(m, _mm512_sub_ps(row16(xr, rr, j, m), vp), vm);
        q0 = _mm512_fmadd_ps(d, d, q0);
      }
      var = _mm512_reduce_add_ps(q0) / (float)C;
    }
    const float rstd = 1.0f / std::sqrt(var + p.eps);
    p.mean[r] = pivot + dmean;
    p.rstd[r] = rstd;
    const __m512 vr = _mm512_set1_ps(rstd);
    T* o = out + r * C;
    // the next row's inputs come in while this one is written, so pass 1 reads them from L1 instead of
    // waiting on memory after the stores: 1.21-1.34x at 4096 x 768 (bench kernels, old and new addon
    // alternated 5 times, two sets). The register path below (rows of <= 256) gained nothing from it.
    const bool more = r + 1 < end;
    for (j = 0; j < C; j += 16) {
      if (more) {
        _mm_prefetch(reinterpret_cast<const char*>(xr + C + j), _MM_HINT_T0);
        if (rr) _mm_prefetch(reinterpret_cast<const char*>(rr + C + j), _MM_HINT_T0);
      }
      const __mmask16 m = tail_mask(C - j);
      const __m512 xh = _mm512_mul_ps(_mm512_sub_ps(_mm512_sub_ps(row16(xr, rr, j, m), vp), vm), vr);
      store16(o + j, m, _mm512_fmadd_ps(xh, cpu::maskz_loadu(m, p.gamma + j), cpu::maskz_loadu(m, p.beta + j)));
    }
  }
}

// Forward for rows of exactly 16 * NV values (64, 128, 192, 256: bert-mini and smaller): the same
// math with the row held in NV registers, so pass 2 neither reloads the row nor adds the residual
// again. The sums pair even and odd vectors as above: bit-identical to forward_rows_avx512.
// Rows this short finish pass 1 in a few dozen cycles, so the serial per-row chain (reductions, sqrt,
// divide) is most of a row's time; fewer instructions behind it let the next row's loads start sooner:
// 1.3x at 4096 x 256 on Zen 5.
template <class T, int NV>
LB_AVX512 void forward_rows_regs_avx512(const LayernormParams& p, int64_t begin, int64_t end) {
  const int C = p.cols;
  const T* x = static_cast<const T*>(p.x);
  const T* res = static_cast<const T*>(p.residual);
  T* sum = static_cast<T*>(p.sum);
  T* out = static_cast<T*>(p.out);
  for (int64_t r = begin; r < end; r++) {
    const T* xr = x + r * C;
    const T* rr = res ? res + r * C : nullptr;
    const float pivot = rr ? cpu::to_f32(xr[0]) + cpu::to_f32(rr[0]) : cpu::to_f32(xr[0]);
    const __m512 vp = _mm512_set1_ps(pivot);
    __m512 d[NV];  // the row minus the pivot
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), q0 = _mm512_setzero_ps(), q1 = _mm512_setzero_ps();
    for (int k = 0; k < NV; k += 2) {  // NV is even
      const __m512 s0 = row16(xr, rr, 16 * k, 0xffff), s1 = row16(xr, rr, 16 * k + 16, 0xffff);
      if (sum) { store16(sum + r * C + 16 * k, 0xffff, s0); store16(sum + r * C + 16 * k + 16, 0xffff, s1); }
      d[k] = _mm512_sub_ps(s0, vp);
      d[k + 1] = _mm512_sub_ps(s1, vp);
      a0 = _mm512_add_ps(a0, d[k]); q0 = _mm512_fmadd_ps(d[k], d[k], q0);
      a1 = _mm512_add_ps(a1, d[k + 1]); q1 = _mm512_fmadd_ps(d[k + 1], d[k + 1], q1);
    }
    const float dmean = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1)) / (float)C;
    const float msq = _mm512_reduce_add_ps(_mm512_add_ps(q0, q1)) / (float)C;
    const __m512 vm = _mm512_set1_ps(dmean);
    float var;
    if (dmean * dmean <= 0.75f * msq) {
      var = msq - dmean * dmean;
    } else {  // exact: the sum of (d - E[d])^2 over the row, in order
      q0 = _mm512_setzero_ps();
      for (int k = 0; k < NV; k++) {
        const __m512 e = _mm512_sub_ps(d[k], vm);
        q0 = _mm512_fmadd_ps(e, e, q0);
      }
      var = _mm512_reduce_add_ps(q0) / (float)C;
    }
    const float rstd = 1.0f / std::sqrt(var + p.eps);
    p.mean[r] = pivot + dmean;
    p.rstd[r] = rstd;
    const __m512 vr = _mm512_set1_ps(rstd);
    T* o = out + r * C;
    for (int k = 0; k < NV; k++) {
      const __m512 xh = _mm512_mul_ps(_mm512_sub_ps(d[k], vm), vr);
      store16(o + 16 * k, 0xffff, _mm512_fmadd_ps(xh, _mm512_loadu_ps(p.gamma + 16 * k), _mm512_loadu_ps(p.beta + 16 * k)));
    }
  }
}

// s1 += dxhat, s2 += dxhat * (x - mean): rstd is applied to the row's sum instead (one multiply per row
// rather than per value; the FMA pipes bound this kernel once the rows are in L1)
template <class T>
LB_AVX512 inline void row_sums(const T* xr, const T* gr, __m512 gam, int j, __mmask16 m, __m512 vmean,
                               __m512& s1, __m512& s2) {
  const __m512 d = _mm512_sub_ps(load16(xr + j, m), vmean);
  const __m512 dxh = _mm512_mul_ps(load16(gr + j, m), gam);
  s1 = _mm512_add_ps(s1, dxh);
  s2 = _mm512_fmadd_ps(dxh, d, s2);
}

// Backward over the rows [r0, r1) of one chunk, or of a part of one (kFull: C is a multiple of 64):
// dx (=) and the chunk's dgamma, dbeta partials dg, db (C): = for the chunk's first part, += (`more`)
// for the next ones, in row order either way. Pass 1 (row by row) sums dxhat and dxhat * (x - mean)
// per row; pass 2 (64 columns at a time, rows in order, the rows still in L1 or L2) accumulates dg, db
// in registers and writes dx.
// NV > 0: C == 16 NV, parts of a few rows of at most 1 KB. Once the rows are in L1 the loads bound
// both passes (~1.6 zmm loads per cycle here), so pass 1 keeps gamma in registers and pass 2 loads dout
// once per value (GCC otherwise folds it into two instructions as two loads): 83 -> 75 cycles per row
// at C = 256 from L1. Pass 2 also prefetches the next part's rows a strip at a time, so they arrive
// while this part computes instead of pass 1 waiting for them (prefetching them in pass 1 was 0.94x).
// All three: 1.05-1.11x at 4096 x 256 with two threads (same-process A/B, two sets of 5 runs), 1.07x
// in bench kernels with the old and new addon alternated 10 times; same bits.
template <class T, bool kFull, int NV = 0>
LB_AVX512 void backward_rows_avx512(const LayernormParams& p, float* stats, int64_t r0, int64_t r1, float* dg, float* db, bool more) {
  static_assert(NV == 0 || (kFull && NV % 4 == 0 && NV <= 16), "NV: whole 64-column strips, at most 256 columns");
  // vectors per pass-2 strip: 8 (128 columns) where the row holds whole ones: half the per-row loads
  // of mean, rstd, k1, k2 (same bits; 256 columns in place from L1, 64-byte aligned rows: 1.025x in 4
  // alternations; in bench kernels in place at bert-mini 1.09x and 1.00x in two sets of 6)
  constexpr int SV = NV > 0 && NV % 8 == 0 ? 8 : 4;
  const int C = NV > 0 ? 16 * NV : p.cols;
  const T* x = static_cast<const T*>(p.x);
  const T* dout = static_cast<const T*>(p.dout);
  T* dx = static_cast<T*>(p.dx);
  __m512 gam_row[NV > 0 ? NV : 1];  // gamma (C) when NV > 0
  for (int k = 0; k < NV; k++) gam_row[k] = _mm512_loadu_ps(p.gamma + 16 * k);
  for (int64_t r = r0; r < r1; r++) {
    const T* xr = x + r * C;
    const T* gr = dout + r * C;
    const __m512 vmean = _mm512_set1_ps(p.mean[r]);
    // sums of dxhat and dxhat * (x - mean), in two sets of lanes
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), q0 = _mm512_setzero_ps(), q1 = _mm512_setzero_ps();
    int j = 0;
    for (; j + 32 <= C; j += 32) {
      row_sums(xr, gr, NV > 0 ? gam_row[j / 16] : _mm512_loadu_ps(p.gamma + j), j, 0xffff, vmean, a0, q0);
      row_sums(xr, gr, NV > 0 ? gam_row[j / 16 + 1] : _mm512_loadu_ps(p.gamma + j + 16), j + 16, 0xffff, vmean, a1, q1);
    }
    for (; j < C; j += 16) {
      const __mmask16 m = tail_mask(C - j);
      row_sums(xr, gr, cpu::maskz_loadu(m, p.gamma + j), j, m, vmean, a0, q0);
    }
    // dx = rstd (dxhat - m1 - xhat m2), m1 = mean of dxhat, m2 = mean of dxhat * xhat. kFull rows take
    // it in pass 2 as (dout rstd) gamma - k1 - k2 (x - mean), k1 = rstd m1, k2 = rstd^2 m2: one FMA-pipe
    // op fewer per value (1.1x at 4096 x 256). The other form keeps dxhat - m1 exact where it cancels
    // (a 1-column row's dx is exactly 0).
    const float rstd = p.rstd[r];
    const float m1 = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1)) / (float)C;
    const float m2 = _mm512_reduce_add_ps(_mm512_add_ps(q0, q1)) * rstd / (float)C;
    float* st = stats + 4 * (r - r0);  // mean, rstd, then k1, k2 (kFull) or m1, m2
    st[0] = p.mean[r];
    st[1] = rstd;
    st[2] = kFull ? rstd * m1 : m1;
    st[3] = kFull ? rstd * rstd * m2 : m2;
  }
  for (int j0 = 0; j0 < C; j0 += 16 * SV) {
    __mmask16 m[SV];
    __m512 gam[SV], sg[SV], sb[SV];
    for (int k = 0; k < SV; k++) {
      m[k] = kFull ? (__mmask16)0xffff : j0 + 16 * k < C ? tail_mask(C - j0 - 16 * k) : (__mmask16)0;
      gam[k] = cpu::maskz_loadu(m[k], p.gamma + j0 + 16 * k);
      sg[k] = more ? cpu::maskz_loadu(m[k], dg + j0 + 16 * k) : _mm512_setzero_ps();
      sb[k] = more ? cpu::maskz_loadu(m[k], db + j0 + 16 * k) : _mm512_setzero_ps();
    }
    for (int64_t r = r0; r < r1; r++) {
      const float* st = stats + 4 * (r - r0);
      const __m512 vmean = _mm512_set1_ps(st[0]), vr = _mm512_set1_ps(st[1]);
      const __m512 c1 = _mm512_set1_ps(st[2]), c2 = _mm512_set1_ps(st[3]);
      if (NV > 0 && r + (r1 - r0) < p.rows) {  // this strip of the row one part ahead
        const char* nx = reinterpret_cast<const char*>(x + (r + (r1 - r0)) * C + j0);
        const char* ng = reinterpret_cast<const char*>(dout + (r + (r1 - r0)) * C + j0);
        for (int l = 0; l < 16 * SV * (int)sizeof(T); l += 64) {
          _mm_prefetch(nx + l, _MM_HINT_T0);
          _mm_prefetch(ng + l, _MM_HINT_T0);
        }
      }
      for (int k = 0; k < SV; k++) {
        const int64_t o = r * C + j0 + 16 * k;
        const __m512 d = _mm512_sub_ps(load16(x + o, m[k]), vmean);
        __m512 g = load16(dout + o, m[k]);
        if constexpr (NV > 0) asm("" : "+v"(g));  // keeps g in a register: one load, not two
        sb[k] = _mm512_add_ps(sb[k], g);
        if constexpr (kFull) {  // c1, c2 = k1, k2
          const __m512 gr = _mm512_mul_ps(g, vr);
          sg[k] = _mm512_fmadd_ps(gr, d, sg[k]);  // dgamma += dout * xhat
          store16(dx + o, m[k], _mm512_fnmadd_ps(c2, d, _mm512_fmsub_ps(gr, gam[k], c1)));
        } else {  // c1, c2 = m1, m2
          const __m512 xh = _mm512_mul_ps(d, vr);
          sg[k] = _mm512_fmadd_ps(g, xh, sg[k]);
          const __m512 v = _mm512_fnmadd_ps(xh, c2, _mm512_sub_ps(_mm512_mul_ps(g, gam[k]), c1));
          store16(dx + o, m[k], _mm512_mul_ps(vr, v));
        }
      }
    }
    for (int k = 0; k < SV; k++) {
      cpu::mask_storeu(dg + j0 + 16 * k, m[k], sg[k]);
      cpu::mask_storeu(db + j0 + 16 * k, m[k], sb[k]);
    }
  }
}

// dgamma, dbeta (C) += sum over chunks in chunk order of partial (nchunks, 2, C)
LB_AVX512 void reduce_chunks_avx512(const float* partial, int64_t nchunks, int C, int64_t c0, int64_t c1, float* dgamma, float* dbeta) {
  for (int64_t c = c0; c < c1; c += 16) {
    const __mmask16 m = tail_mask(c1 - c);
    __m512 sg = _mm512_setzero_ps(), sb = _mm512_setzero_ps();
    for (int64_t ch = 0; ch < nchunks; ch++) {
      sg = _mm512_add_ps(sg, cpu::maskz_loadu(m, partial + ch * 2 * C + c));
      sb = _mm512_add_ps(sb, cpu::maskz_loadu(m, partial + ch * 2 * C + C + c));
    }
    cpu::mask_storeu(dgamma + c, m, _mm512_add_ps(cpu::maskz_loadu(m, dgamma + c), sg));
    cpu::mask_storeu(dbeta + c, m, _mm512_add_ps(cpu::maskz_loadu(m, dbeta + c), sb));
  }
}
LB_AVX512_END

template <class T>
void forward_avx512(const LayernormParams& p) {
  const int64_t grain = std::max<int64_t>(1, 16384 / p.cols);
  const int C = p.cols;
  if (C == 64) return parallel_for(p.rows, grain, [&](int64_t b, int64_t e) { forward_rows_regs_avx512<T, 4>(p, b, e); });
  if (C == 128) return parallel_for(p.rows, grain, [&](int64_t b, int64_t e) { forward_rows_regs_avx512<T, 8>(p, b, e); });
  if (C == 192) return parallel_for(p.rows, grain, [&](int64_t b, int64_t e) { forward_rows_regs_avx512<T, 12>(p, b, e); });
  if (C == 256) return parallel_for(p.rows, grain, [&](int64_t b, int64_t e) { forward_rows_regs_avx512<T, 16>(p, b, e); });
  parallel_for(p.rows, grain, [&](int64_t begin, int64_t end) { forward_rows_avx512<T>(p, begin, end); });
}

template <class T>
void backward_avx512(const LayernormParams& p) {
  const int C = p.cols;
  const int64_t nchunks = ((int64_t)p.rows + kRowChunk - 1) / kRowChunk;
  // (nchunks, 2, C), owned by the calling thread. Pass 2 loads and stores the chunk's partial sums once
  // per strip of a part: on a cache line they never split one (at malloc's 16-byte alignment they did,
  // and the backward took 1.06x the time at 4096 x 256).
  thread_local std::vector<float> partial_buf;
  float* partial = cpu::grow_aligned(partial_buf, (size_t)nchunks * 2 * C);
  parallel_for(nchunks, 1, [&](int64_t begin, int64_t end) {
    // Rows of at most 1 KB go through both passes 8 at a time (16 KB of x and dout, still in L1 for
    // pass 2): 1.12-1.15x at 4096 x 256 with two threads. Wider rows take the chunk at once (parts of
    // 2-8 rows were 4-12% slower at 4096 x 768). The partial sums come out the same either way.
    const int part = C * (int)sizeof(T) <= 1024 ? 8 : kRowChunk;
    float stats[4 * kRowChunk];
    for (int64_t ch = begin; ch < end; ch++) {
      float* dg = partial + ch * 2 * C;
      const int64_t r0 = ch * kRowChunk, r1 = std::min<int64_t>(p.rows, r0 + kRowChunk);
      for (int64_t s0 = r0; s0 < r1; s0 += part) {
        const int64_t s1 = std::min<int64_t>(r1, s0 + part);
        // rows of whole 64-column strips: constant masks (the masked form was 1.06-1.2x slower at 256)
        const bool more = s0 != r0;
        if (C == 64) backward_rows_avx512<T, true, 4>(p, stats, s0, s1, dg, dg + C, more);
        else if (C == 128) backward_rows_avx512<T, true, 8>(p, stats, s0, s1, dg, dg + C, more);
        else if (C == 192) backward_rows_avx512<T, true, 12>(p, stats, s0, s1, dg, dg + C, more);
        else if (C == 256) backward_rows_avx512<T, true, 16>(p, stats, s0, s1, dg, dg + C, more);
        else if (C % 64 == 0) backward_rows_avx512<T, true>(p, stats, s0, s1, dg, dg + C, more);
        else backward_rows_avx512<T, false>(p, stats, s0, s1, dg, dg + C, more);
      }
    }
  });
  parallel_for(C, 256, [&](int64_t c0, int64_t c1) { reduce_chunks_avx512(partial, nchunks, C, c0, c1, p.dgamma, p.dbeta); });
}
#endif

}  // namespace

void layernorm_forward_cpu(const LayernormParams& p) {
  // x, residual, sum, out (rows, cols); mean, rstd (rows); gamma, beta (cols)
#if LB_X86_SIMD
  if (cpu::has_avx512()) return cpu::with_dtype(p.dtype, [&](auto tag) { forward_avx512<decltype(tag)>(p); });
#endif
  cpu::with_dtype(p.dtype, [&](auto tag) { forward_impl<decltype(tag)>(p); });
}
// backward: dx (=), dgamma and dbeta (+=)
void layernorm_backward_cpu(const LayernormParams& p) {
#if LB_X86_SIMD
  if (cpu::has_avx512()) return cpu::with_dtype(p.dtype, [&](auto tag) { backward_avx512<decltype(tag)>(p); });
#endif
  cpu::with_dtype(p.dtype, [&](auto tag) { backward_impl<decltype(tag)>(p); });
}

}  // namespace lb
