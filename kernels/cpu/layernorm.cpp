// layernorm.cpp (cpu): fused residual add + layernorm, one row per task, the row held in f32 scratch.
// Mean and variance are summed in 8 f32 lanes around a pivot (the row's first value), so rows with a
// large mean (1e4) and small variance keep their precision. The backward computes dx per row and
// reduces dgamma/dbeta over fixed chunks of kRowChunk rows, then over chunks in order: deterministic
// and independent of the thread count.
#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu_util.h"

namespace lb {
namespace {

using cpu::bf16;
constexpr int kRowChunk = 32;

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

}  // namespace

void layernorm_forward_cpu(const LayernormParams& p) {
  cpu::with_dtype(p.dtype, [&](auto tag) { forward_impl<decltype(tag)>(p); });
}
// backward: dx (=), dgamma and dbeta (+=)
void layernorm_backward_cpu(const LayernormParams& p) {
  cpu::with_dtype(p.dtype, [&](auto tag) { backward_impl<decltype(tag)>(p); });
}

}  // namespace lb
