// layernorm.cu: LayerNorm over the last dim with the residual add fused into the forward.
//   forward: s = x + residual (stored into sum when asked), out = (s - mean) * rstd * gamma + beta.
//     One warp per row; two passes over the row (mean, then the centred variance), both around a pivot.
//   backward: dx (=), dgamma and dbeta (+=) in one pass over x and dout per row, one warp per row (a
//     block per row for rows too wide for 8 warps' partials in shared memory). Column partials of
//     dgamma/dbeta stay in shared memory (each column owned by one thread: no atomics); a second kernel
//     sums the per-block partials in block order, so the result is deterministic. The grid depends only
//     on rows, never on the device.
#include "common.cuh"

namespace lb {
namespace {

constexpr int kFwdWarps = 8;   // rows per forward block
constexpr int kBwdThreads = 256;
constexpr int kBwdRowsPerBlock = 32;
constexpr int kMaxBwdBlocks = 1024;
constexpr int kWarpBwdWarps = 8;          // warps (rows in flight) per block of the warp-per-row backward
constexpr int kWarpBwdRowsPerBlock = 16;  // at least 2 rows per warp: 256 blocks at 4096 rows
constexpr int kWarpBwdMaxBlocks = 512;     // more rows per block past 8192 rows: the partials stay small

template <typename T>
__global__ void layernorm_fwd_kernel(const T* x, const T* res, T* sum, T* out, float* mean, float* rstd,
                                     const float* gamma, const float* beta, int rows, int cols, float eps) {
  // x, res, sum, out (rows, cols); mean, rstd (rows); gamma, beta (cols)
  const int lane = threadIdx.x & 31;
  const int row = blockIdx.x * kFwdWarps + (threadIdx.x >> 5);
  if (row >= rows) return;
  const size_t base = (size_t)row * cols;
  auto load = [&](int c) { return res ? lb_ld(x + base + c) + lb_ld(res + base + c) : lb_ld(x + base + c); };
  // Sums run around a pivot (the row's first value) so that a large mean (1e4) with a small spread keeps
  // its precision: s - pivot is exact (Sterbenz) and the f32-rounded mean is never subtracted.
  const float pivot = load(0);
  float acc = 0.0f;
  for (int c = lane; c < cols; c += 32) {
    const float s = load(c);
    if (sum) lb_st(sum + base + c, s);
    acc += s - pivot;
  }
  const float dm = lb_warp_sum(acc) / cols;  // mean - pivot
  float var = 0.0f;
  for (int c = lane; c < cols; c += 32) {
    const float d = (load(c) - pivot) - dm;
    var = fmaf(d, d, var);
  }
  const float rs = rsqrtf(lb_warp_sum(var) / cols + eps);
  for (int c = lane; c < cols; c += 32) lb_st(out + base + c, ((load(c) - pivot) - dm) * rs * gamma[c] + beta[c]);
  const float m = pivot + dm;
  if (lane == 0) {
    mean[row] = m;
    rstd[row] = rs;
  }
}

// One row of the backward, columns c0, c0 + step, ... (one thread's share; every column belongs to one
// thread, so the partials need no atomics). Pass 1: this thread's parts of the row sums a = sum(dnorm)
// and b = sum(dnorm * xhat), dnorm = dout * gamma, and the dgamma / dbeta column partials pg, pb (+=).
template <typename T>
__device__ __forceinline__ void ln_bwd_row_sums(const T* xr, const T* gr, const float* gamma, float m, float rs, int c0,
                                                int step, int cols, float* pg, float* pb, float& a, float& b) {
  for (int c = c0; c < cols; c += step) {
    const float xh = (lb_ld(xr + c) - m) * rs;
    const float dy = lb_ld(gr + c);
    const float dn = __fmul_rn(dy, gamma[c]);  // rounded as in the second pass: never fused into a sum
    a += dn;
    b = fmaf(dn, xh, b);
    pg[c] = fmaf(dy, xh, pg[c]);
    pb[c] += dy;
  }
}
// Pass 2, with a and b the row means: dx = (dnorm - a - xhat b) rstd (=). A thread reads column c before
// it writes dx at c, so dx may alias dout.
template <typename T>
__device__ __forceinline__ void ln_bwd_row_dx(const T* xr, const T* gr, T* dxr, const float* gamma, float m, float rs,
                                              float a, float b, int c0, int step, int cols) {
  for (int c = c0; c < cols; c += step) {
    const float xh = (lb_ld(xr + c) - m) * rs;
    const float dn = __fmul_rn(lb_ld(gr + c), gamma[c]);  // an FMA here would leave dn's rounding error in dn - a
    lb_st(dxr + c, (dn - a - xh * b) * rs);
  }
}

template <typename T>
__global__ void layernorm_bwd_kernel(const T* x, const T* dout, T* dx, const float* mean, const float* rstd,
                                     const float* gamma, float* partial, int rows, int cols) {
  // x, dout, dx (rows, cols); mean, rstd (rows); gamma (cols); partial (gridDim.x, 2, cols) written
  extern __shared__ float smem[];  // dgamma partial (cols), dbeta partial (cols)
  __shared__ float red[32];
  float* pg = smem;
  float* pb = smem + cols;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) pg[c] = pb[c] = 0.0f;
  for (int row = blockIdx.x; row < rows; row += gridDim.x) {
    const size_t base = (size_t)row * cols;
    const float m = mean[row], rs = rstd[row];
    // row reductions: mean(dnorm) and mean(dnorm * xhat), dnorm = dout * gamma
    float a = 0.0f, b = 0.0f;
    ln_bwd_row_sums(x + base, dout + base, gamma, m, rs, threadIdx.x, blockDim.x, cols, pg, pb, a, b);
    a = lb_block_sum(a, red) / cols;
    b = lb_block_sum(b, red) / cols;
    ln_bwd_row_dx(x + base, dout + base, dx + base, gamma, m, rs, a, b, threadIdx.x, blockDim.x, cols);
  }
  float* out = partial + (size_t)blockIdx.x * 2 * cols;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) {
    out[c] = pg[c];
    out[cols + c] = pb[c];
  }
}

// The backward with one warp per row: the row sums are warp shuffles (no block barrier per row), and 8
// rows are in flight per block. Each warp keeps its own dgamma / dbeta partials in shared memory (lane l
// owns columns l, l + 32, ...: no races); at the end the block adds its warps' partials in warp order and
// writes one (2, cols) partial per block, summed over blocks in order by layernorm_param_grad_kernel: the
// result depends only on rows, never on timing. dx may alias dout: a lane reads column c of a row (both
// passes) before it writes dx at c, and no other lane touches c.
template <typename T>
__global__ void __launch_bounds__(kWarpBwdWarps * 32)
    layernorm_bwd_warp_kernel(const T* x, const T* dout, T* dx, const float* mean, const float* rstd,
                              const float* gamma, float* partial, int rows, int cols, int rows_per_block) {
  // x, dout, dx (rows, cols); mean, rstd (rows); gamma (cols); partial (gridDim.x, 2, cols) written
  extern __shared__ float smem[];  // per warp: dgamma partial (cols), dbeta partial (cols)
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  float* pg = smem + (size_t)warp * 2 * cols;
  float* pb = pg + cols;
  for (int c = lane; c < cols; c += 32) pg[c] = pb[c] = 0.0f;
  const int r0 = blockIdx.x * rows_per_block;
  const int r1 = min(rows, r0 + rows_per_block);
  for (int row = r0 + warp; row < r1; row += kWarpBwdWarps) {
    const size_t base = (size_t)row * cols;
    const float m = mean[row], rs = rstd[row];
    // row reductions: mean(dnorm) and mean(dnorm * xhat), dnorm = dout * gamma
    float a = 0.0f, b = 0.0f;
    ln_bwd_row_sums(x + base, dout + base, gamma, m, rs, lane, 32, cols, pg, pb, a, b);
    a = lb_warp_sum(a) / cols;
    b = lb_warp_sum(b) / cols;
    ln_bwd_row_dx(x + base, dout + base, dx + base, gamma, m, rs, a, b, lane, 32, cols);
  }
  __syncthreads();
  float* out = partial + (size_t)blockIdx.x * 2 * cols;
  for (int c = threadIdx.x; c < 2 * cols; c += blockDim.x) {
    float v = 0.0f;
    for (int w = 0; w < kWarpBwdWarps; w++) v += smem[(size_t)w * 2 * cols + c];  // warps in order
    out[c] = v;
  }
}

// 32 columns per block, 8 threads per column: thread (c, y) sums partial rows y, y + 8, ... in order,
// then the 8 sums are added in y order: deterministic, and 8x the threads of one per column (bert-large's
// 512 partial rows were a long serial chain per thread).
constexpr int kParamGradSplit = 8;
__global__ void __launch_bounds__(32 * kParamGradSplit) layernorm_param_grad_kernel(const float* partial, int blocks, int cols,
                                                                                     float* dgamma, float* dbeta) {
  // partial (blocks, 2, cols); dgamma, dbeta (cols) +=
  __shared__ float red[2][kParamGradSplit][32];
  const int tx = threadIdx.x, ty = threadIdx.y, c = blockIdx.x * 32 + tx;
  float g = 0.0f, b = 0.0f;
  if (c < cols) {
    for (int k = ty; k < blocks; k += kParamGradSplit) {
      g += partial[(size_t)k * 2 * cols + c];
      b += partial[(size_t)k * 2 * cols + cols + c];
    }
  }
  red[0][ty][tx] = g;
  red[1][ty][tx] = b;
  __syncthreads();
  if (ty == 0 && c < cols) {
    float sg = 0.0f, sb = 0.0f;
    for (int y = 0; y < kParamGradSplit; y++) {
      sg += red[0][y][tx];
      sb += red[1][y][tx];
    }
    dgamma[c] += sg;
    dbeta[c] += sb;
  }
}

}  // namespace

void layernorm_forward_cuda(const LayernormParams& p) {
  if (p.rows <= 0 || p.cols <= 0) return;
  const unsigned blocks = (unsigned)((p.rows + kFwdWarps - 1) / kFwdWarps);
  LB_FLOAT_DISPATCH("layernorm", p.dtype, T,
                    layernorm_fwd_kernel<T><<<blocks, kFwdWarps * 32, 0, cuda_stream()>>>(
                        (const T*)p.x, (const T*)p.residual, (T*)p.sum, (T*)p.out, p.mean, p.rstd, p.gamma, p.beta,
                        p.rows, p.cols, p.eps));
  lb_check_launch("layernorm");
}

void layernorm_backward_cuda(const LayernormParams& p) {
  if (p.rows <= 0 || p.cols <= 0) return;
  const size_t max_smem = (size_t)cuda_props().sharedMemPerBlockOptin - 32 * sizeof(float);
  const size_t warp_smem = sizeof(float) * 2 * (size_t)p.cols * kWarpBwdWarps;
  // rows up to ~3500 columns (H100/H200: 227 KB of shared memory per block) take the warp-per-row kernel;
  // wider ones the block-per-row one, which needs 1/8 of that
  const bool by_warp = warp_smem <= max_smem;
  const size_t smem = by_warp ? warp_smem : sizeof(float) * 2 * (size_t)p.cols;
  if (smem > max_smem)
    throw std::runtime_error("layernorm: cols = " + std::to_string(p.cols) + " exceeds the shared-memory limit of the cuda backward");
  int blocks, rows_per_block = kBwdRowsPerBlock;
  if (by_warp) {
    // a few hundred blocks keep the (blocks, 2, cols) partials small (1024 blocks made bert-large's
    // backward 14-22% slower than the block-per-row kernel's 512)
    rows_per_block = std::max(kWarpBwdRowsPerBlock, (p.rows + kWarpBwdMaxBlocks - 1) / kWarpBwdMaxBlocks);
    blocks = (p.rows + rows_per_block - 1) / rows_per_block;
  } else {
    blocks = (p.rows + kBwdRowsPerBlock - 1) / kBwdRowsPerBlock;
    if (blocks > kMaxBwdBlocks) blocks = kMaxBwdBlocks;
  }
  CudaScratch partial(sizeof(float) * 2 * (size_t)p.cols * blocks);
  LB_FLOAT_DISPATCH("layernorm", p.dtype, T, {
    if (by_warp) {
      if (smem > 48 * 1024) lb_set_max_smem((const void*)layernorm_bwd_warp_kernel<T>, (int)smem, "layernorm");
      layernorm_bwd_warp_kernel<T><<<blocks, kWarpBwdWarps * 32, smem, cuda_stream()>>>(
          (const T*)p.x, (const T*)p.dout, (T*)p.dx, p.mean, p.rstd, p.gamma, partial.as<float>(), p.rows, p.cols,
          rows_per_block);
    } else {
      if (smem > 48 * 1024) lb_set_max_smem((const void*)layernorm_bwd_kernel<T>, (int)smem, "layernorm");
      layernorm_bwd_kernel<T><<<blocks, kBwdThreads, smem, cuda_stream()>>>(
          (const T*)p.x, (const T*)p.dout, (T*)p.dx, p.mean, p.rstd, p.gamma, partial.as<float>(), p.rows, p.cols);
    }
  });
  lb_check_launch("layernorm");
  layernorm_param_grad_kernel<<<(p.cols + 31) / 32, dim3(32, kParamGradSplit), 0, cuda_stream()>>>(
      partial.as<float>(), blocks, p.cols, p.dgamma, p.dbeta);
  lb_check_launch("layernorm");
}

}  // namespace lb
