// matmul.cpp (ref): C[b] = alpha * op(A[b]) @ op(B[b]) + beta * C[b] (+ bias) (GELU), naive triple
// loop with f64 accumulation. bias_backward: dbias[n] += sum_m dout[m, n].
#include <vector>

#include "ref_util.h"

namespace lb {

void matmul_forward_ref(const MatmulParams& p) {
  // a (batch, M,K) or (batch, K,M); b (batch, K,N) or (batch, N,K); c, pre_gelu (batch, M,N); bias (N)
  for (int bt = 0; bt < p.batch; bt++) {
    const int64_t oa = bt * p.stride_a, ob = bt * p.stride_b, oc = bt * p.stride_c;
    for (int m = 0; m < p.M; m++) {
      for (int n = 0; n < p.N; n++) {
        double acc = 0.0;
        for (int k = 0; k < p.K; k++) {
          const int64_t ia = oa + (p.trans_a ? (int64_t)k * p.lda + m : (int64_t)m * p.lda + k);
          const int64_t ib = ob + (p.trans_b ? (int64_t)n * p.ldb + k : (int64_t)k * p.ldb + n);
          acc += ref::load(p.a, ia, p.ab_dtype) * ref::load(p.b, ib, p.ab_dtype);
        }
        const int64_t ic = oc + (int64_t)m * p.ldc + n;
        double val = (double)p.alpha * acc;
        // beta == 0 ignores C entirely (BLAS convention), so uninitialised or NaN outputs are fine
        if (p.beta != 0.0f) val += (double)p.beta * ref::load(p.c, ic, p.c_dtype);
        if (p.epilogue != Epilogue::None) val += (double)p.bias[n];
        if (p.epilogue == Epilogue::BiasGelu) {
          if (p.pre_gelu) ref::store(p.pre_gelu, ic, val, p.c_dtype);
          val = lb_gelu_d(val);
        }
        ref::store(p.c, ic, val, p.c_dtype);
      }
    }
  }
}

void bias_backward_ref(const BiasBackwardParams& p) {
  // dout (M,N) row stride ld; dbias (N) +=
  for (int n = 0; n < p.N; n++) {
    double acc = 0.0;
    for (int m = 0; m < p.M; m++) acc += ref::load(p.dout, (int64_t)m * p.ld + n, p.dtype);
    p.dbias[n] = (float)((double)p.dbias[n] + acc);
  }
}

}  // namespace lb
