// matmul.cpp: CPU matmul (f32) and bias_backward. Simple threaded version; the blocked GEMM follows.
#include <algorithm>
#include <stdexcept>
#include <vector>

#include "../common.h"
#include "../ops.h"
#include "threadpool.h"

namespace lb {

void matmul_forward_cpu(const MatmulParams& p) {
  if (p.ab_dtype != DType::F32 || p.c_dtype != DType::F32) throw std::runtime_error("matmul: cpu supports f32 only");
  const float* A = (const float*)p.a;
  const float* B = (const float*)p.b;
  float* C = (float*)p.c;
  float* P = (float*)p.pre_gelu;
  const int64_t rows = (int64_t)p.batch * p.M;
  parallel_for(rows, 4, [&](int64_t r0, int64_t r1) {
    thread_local std::vector<float> acc;
    if ((int64_t)acc.size() < p.N) acc.resize(p.N);
    for (int64_t r = r0; r < r1; r++) {
      const int64_t bi = r / p.M, i = r % p.M;
      const float* a = A + bi * p.stride_a;
      const float* b = B + bi * p.stride_b;
      float* c = C + bi * p.stride_c + i * p.ldc;
      std::fill(acc.begin(), acc.begin() + p.N, 0.0f);
      for (int k = 0; k < p.K; k++) {
        const float av = p.trans_a ? a[(int64_t)k * p.lda + i] : a[i * p.lda + k];
        if (p.trans_b) {
          for (int j = 0; j < p.N; j++) acc[j] += av * b[(int64_t)j * p.ldb + k];
        } else {
          const float* brow = b + (int64_t)k * p.ldb;
          for (int j = 0; j < p.N; j++) acc[j] += av * brow[j];
        }
      }
      for (int j = 0; j < p.N; j++) {
        float v = p.alpha * acc[j];
        if (p.beta != 0.0f) v += p.beta * c[j];
        if (p.epilogue != Epilogue::None) v += p.bias[j];
        if (p.epilogue == Epilogue::BiasGelu) {
          if (P) P[bi * p.stride_c + i * p.ldc + j] = v;
          v = lb_gelu(v);
        }
        c[j] = v;
      }
    }
  });
}

void bias_backward_cpu(const BiasBackwardParams& p) {
  if (p.dtype != DType::F32) throw std::runtime_error("bias_backward: cpu supports f32 only");
  const float* d = (const float*)p.dout;
  parallel_for(p.N, 64, [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; j++) {
      float s = 0.0f;
      for (int64_t m = 0; m < p.M; m++) s += d[m * p.N + j];
      p.dbias[j] += s;
    }
  });
}

}  // namespace lb
