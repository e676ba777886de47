// grad_norm.cpp (cpu): sum of squares with a fixed reduction tree: blocks of kBlock values are summed in
// 8 f32 lanes, blocks are added in f64 within fixed chunks of kChunk values, and the chunk partials are
// added in order. The tree depends only on n, so the result is bit-identical for any thread count.
#include <algorithm>
#include <vector>

#include "cpu_util.h"

namespace lb {
namespace {
constexpr int64_t kBlock = 1024;
constexpr int64_t kChunk = 1 << 16;
}  // namespace

void grad_norm_forward_cpu(const GradNormParams& p) {
  // x (n); out (1) = sum x^2
  const int64_t nchunks = (p.n + kChunk - 1) / kChunk;
  thread_local std::vector<double> partial_buf;
  double* partial = cpu::grow(partial_buf, (size_t)std::max<int64_t>(nchunks, 1));
  parallel_for(nchunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t ch = c0; ch < c1; ch++) {
      const int64_t e = std::min(p.n, (ch + 1) * kChunk);
      double chunk = 0.0;
      for (int64_t b = ch * kChunk; b < e; b += kBlock) {
        const float* __restrict x = p.x + b;
        const int64_t n = std::min(kBlock, e - b);
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int64_t i = 0;
        for (; i + 8 <= n; i += 8)
          for (int l = 0; l < 8; l++) acc[l] += x[i + l] * x[i + l];
        for (int l = 0; i < n; i++, l++) acc[l] += x[i] * x[i];
        chunk += (double)(((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])));
      }
      partial[ch] = chunk;
    }
  });
  double total = 0.0;
  for (int64_t ch = 0; ch < nchunks; ch++) total += partial[ch];
  p.out[0] = (float)total;
}

}  // namespace lb
