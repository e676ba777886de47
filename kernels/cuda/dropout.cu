// dropout.cu: out[i] = keep(i) ? x[i] / (1 - p) : 0 with keep(i) = lb_dropout_keep(seed, offset + i, p)
// (Philox, kernels/common.h). The backward regenerates the mask: dx[i] = keep(i) ? dout[i] / (1 - p) : 0
// (activation grad, =). x/out and dout/dx may alias.
#include "common.cuh"

namespace lb {
namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void dropout_kernel(const T* in, T* out, int64_t n, float p, float inv_keep, uint64_t seed,
                               uint64_t offset) {  // in, out (n)
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const bool keep = lb_dropout_keep(seed, offset + (uint64_t)i, p);
    lb_st(out + i, keep ? lb_ld(in + i) * inv_keep : 0.0f);
  }
}

void dropout_apply(const char* op, const void* in, void* out, const DropoutParams& p) {
  if (p.n <= 0) return;
  const float inv_keep = 1.0f / (1.0f - p.p);
  LB_FLOAT_DISPATCH(op, p.dtype, T,
                    dropout_kernel<T><<<lb_blocks(p.n, kThreads), kThreads, 0, cuda_stream()>>>(
                        (const T*)in, (T*)out, p.n, p.p, inv_keep, p.seed, p.offset));
  lb_check_launch(op);
}

}  // namespace

void dropout_forward_cuda(const DropoutParams& p) { dropout_apply("dropout", p.x, p.out, p); }
void dropout_backward_cuda(const DropoutParams& p) { dropout_apply("dropout", p.dout, p.dx, p); }

}  // namespace lb
