// grad_norm.cu: out[0] = sum(x^2), deterministic: stage 1 has a grid fixed by n alone (not by the
// device), each block reduces a fixed strided set with a fixed tree into partials[block]; stage 2, one
// block, reduces the partials in a fixed tree. Same n -> same bits on any GPU.
#include "common.cuh"

namespace lb {
namespace {

constexpr int kThreads = 512;
constexpr int kMaxBlocks = 1024;

__global__ void sumsq_partial_kernel(const float* x, int64_t n, float* partial) {  // x (n), partial (gridDim.x)
  __shared__ float red[32];
  float acc = 0.0f;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    acc = fmaf(x[i], x[i], acc);
  acc = lb_block_sum(acc, red);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

__global__ void sum_final_kernel(const float* partial, int n, float* out) {  // partial (n), out (1) written
  __shared__ float red[32];
  float acc = 0.0f;
  for (int i = threadIdx.x; i < n; i += blockDim.x) acc += partial[i];
  acc = lb_block_sum(acc, red);
  if (threadIdx.x == 0) out[0] = acc;
}

}  // namespace

void grad_norm_forward_cuda(const GradNormParams& p) {
  if (p.n <= 0) {
    lb_check(cudaMemsetAsync(p.out, 0, sizeof(float), cuda_stream()), "grad_norm");
    return;
  }
  const int blocks = (int)lb_blocks(p.n, kThreads * 4, kMaxBlocks);
  CudaScratch partial(sizeof(float) * blocks);
  sumsq_partial_kernel<<<blocks, kThreads, 0, cuda_stream()>>>(p.x, p.n, partial.as<float>());
  lb_check_launch("grad_norm");
  sum_final_kernel<<<1, 1024, 0, cuda_stream()>>>(partial.as<float>(), blocks, p.out);
  lb_check_launch("grad_norm");
}

}  // namespace lb
