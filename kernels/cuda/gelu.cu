// gelu.cu: GELU (erf form, BERT) and tanh (pooler), forward and backward, through kernels/common.h math.
//   forward: out = f(x) (x may equal out). backward (activation grad, =): dx = dout * f'(.)
//   (gelu reads x; tanh reads out: 1 - out^2); dx may equal dout.
#include "common.cuh"

namespace lb {
namespace {

constexpr int kThreads = 256;

// vec: the pointers are lb_aligned4 (lb_map4)
template <typename T>
__global__ void gelu_fwd_kernel(const T* x, T* out, int64_t n, bool vec) {  // x, out (n)
  lb_map4(x, out, n, vec, [](float v) { return lb_gelu(v); });
}
template <typename T>
__global__ void gelu_bwd_kernel(const T* x, const T* dout, T* dx, int64_t n, bool vec) {  // x, dout, dx (n)
  lb_for_each4(
      n, vec,
      [&](int64_t i) {
        float v[4], d[4];
        lb_ld4(x + i, v);
        lb_ld4(dout + i, d);
#pragma unroll
        for (int k = 0; k < 4; k++) d[k] *= lb_gelu_grad(v[k]);
        lb_st4(dx + i, d);
      },
      [&](int64_t i) { lb_st(dx + i, lb_ld(dout + i) * lb_gelu_grad(lb_ld(x + i))); });
}
template <typename T>
__global__ void tanh_fwd_kernel(const T* x, T* out, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    lb_st(out + i, tanhf(lb_ld(x + i)));
}
template <typename T>
__global__ void tanh_bwd_kernel(const T* out, const T* dout, T* dx, int64_t n) {  // out = tanh(x), saved
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const float y = lb_ld(out + i);
    lb_st(dx + i, lb_ld(dout + i) * (1.0f - y * y));
  }
}

}  // namespace

void gelu_forward_cuda(const ActivationParams& p) {
  if (p.n <= 0) return;
  LB_FLOAT_DISPATCH("gelu", p.dtype, T, {
    const bool vec = lb_aligned4<T>(p.x, p.out);
    gelu_fwd_kernel<T><<<lb_blocks4(p.n, vec, kThreads), kThreads, 0, cuda_stream()>>>(
        (const T*)p.x, (T*)p.out, p.n, vec);
  });
  lb_check_launch("gelu");
}
void gelu_backward_cuda(const ActivationParams& p) {
  if (p.n <= 0) return;
  LB_FLOAT_DISPATCH("gelu", p.dtype, T, {
    const bool vec = lb_aligned4<T>(p.x, p.dout, p.dx);
    gelu_bwd_kernel<T><<<lb_blocks4(p.n, vec, kThreads), kThreads, 0, cuda_stream()>>>(
        (const T*)p.x, (const T*)p.dout, (T*)p.dx, p.n, vec);
  });
  lb_check_launch("gelu");
}
void tanh_forward_cuda(const ActivationParams& p) {
  if (p.n <= 0) return;
  LB_FLOAT_DISPATCH("tanh", p.dtype, T,
                    tanh_fwd_kernel<T><<<lb_blocks(p.n, kThreads), kThreads, 0, cuda_stream()>>>(
                        (const T*)p.x, (T*)p.out, p.n));
  lb_check_launch("tanh");
}
void tanh_backward_cuda(const ActivationParams& p) {
  if (p.n <= 0) return;
  LB_FLOAT_DISPATCH("tanh", p.dtype, T,
                    tanh_bwd_kernel<T><<<lb_blocks(p.n, kThreads), kThreads, 0, cuda_stream()>>>(
                        (const T*)p.out, (const T*)p.dout, (T*)p.dx, p.n));
  lb_check_launch("tanh");
}

}  // namespace lb
