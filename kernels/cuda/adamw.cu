// adamw.cu: fused AdamW over fp32 master weights (ops.h formula), refreshing the bf16 copy if given.
// One thread per element; the bias corrections are computed once on the host.
#include <cmath>

#include "common.cuh"

namespace lb {
namespace {

constexpr int kThreads = 256;

__global__ void adamw_kernel(float* param, const float* grad, float* m, float* v, bf16_t* lowp, int64_t n,
                             float lr, float b1, float b2, float eps, float wd, float gscale, float bc1, float bc2) {
  // param, grad, m, v, lowp (n)
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const float g = grad[i] * gscale;
    const float mi = b1 * m[i] + (1.0f - b1) * g;
    const float vi = b2 * v[i] + (1.0f - b2) * g * g;
    m[i] = mi;
    v[i] = vi;
    const float mhat = mi / bc1, vhat = vi / bc2;
    const float w = param[i] - lr * (mhat / (sqrtf(vhat) + eps) + wd * param[i]);
    param[i] = w;
    if (lowp) lowp[i] = lb_f32_to_bf16(w);
  }
}

}  // namespace

void adamw_forward_cuda(const AdamwParams& p) {
  if (p.n <= 0) return;
  const float bc1 = (float)(1.0 - std::pow((double)p.beta1, (double)p.step));
  const float bc2 = (float)(1.0 - std::pow((double)p.beta2, (double)p.step));
  adamw_kernel<<<lb_blocks(p.n, kThreads), kThreads, 0, cuda_stream()>>>(
      p.param, p.grad, p.m, p.v, (bf16_t*)p.param_lowp, p.n, p.lr, p.beta1, p.beta2, p.eps, p.weight_decay,
      p.grad_scale, bc1, bc2);
  lb_check_launch("adamw");
}

}  // namespace lb
