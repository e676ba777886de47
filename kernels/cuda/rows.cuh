// rows.cuh: deterministic row scatter-add, shared by scatter_add_rows (rows.cu) and the dwte part of the
// embedding backward (embedding.cu):  dst[index[i]] += src[i], duplicates summed in order of i.
// No float atomics:
//   1. count the rows aimed at each destination (integer atomics: the counts are exact);
//   2. destinations hit once (the usual case) are updated in parallel, one thread per element;
//   3. destinations hit more than once get one warp each, which scans `index` in order (32 at a time,
//      ballot) and adds the matching rows into register accumulators, column chunk by column chunk.
// Cost of step 3: O(M) index reads per repeated destination (L2-resident), acceptable for the vocab
// sizes and token counts of BERT; the result is bit-identical run to run.
// Indices outside [0, n_dst) cannot throw from the device: those rows are skipped and the first one is
// recorded for the next synchronize to throw (common.cuh, LbDeviceError).
#pragma once
#include "common.cuh"

namespace lb {
namespace rows_detail {

constexpr int kDupCols = 8;  // columns per lane per chunk: a warp covers 256 columns at a time

static __global__ void count_kernel(const int32_t* index, int M, int n_dst, int32_t* cnt, LbDeviceError* err,
                                    OpId op, int what) {  // index (M), cnt (n_dst)
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < M) {
    const int j = index[i];
    if (j >= 0 && j < n_dst) atomicAdd(cnt + j, 1);  // integer: exact in any order
    else lb_report_index_error(err, op, what, i, j, n_dst);
  }
}

template <typename S, typename D>
__global__ void unique_kernel(const S* src, D* dst, const int32_t* index, const int32_t* cnt, int M, int C,
                              int n_dst) {
  // src (M, C), dst (n_dst, C) +=; only destinations hit exactly once
  const int64_t total = (int64_t)M * C;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
    const int i = (int)(e / C), c = (int)(e % C);
    const int j = index[i];
    if (j < 0 || j >= n_dst || cnt[j] != 1) continue;
    D* d = dst + (size_t)j * C + c;
    lb_st(d, lb_ld(d) + lb_ld(src + e));
  }
}

template <typename S, typename D>
__global__ void dup_kernel(const S* src, D* dst, const int32_t* index, const int32_t* cnt, int M, int C,
                           int n_dst) {
  // one warp per destination j with cnt[j] > 1: dst[j] += src[i] for matching i, in order of i
  const int lane = threadIdx.x & 31;
  const int j = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (j >= n_dst || cnt[j] <= 1) return;
  D* drow = dst + (size_t)j * C;
  for (int c0 = 0; c0 < C; c0 += 32 * kDupCols) {
    float acc[kDupCols];
#pragma unroll
    for (int k = 0; k < kDupCols; k++) {
      const int c = c0 + k * 32 + lane;
      acc[k] = c < C ? lb_ld(drow + c) : 0.0f;
    }
    for (int i0 = 0; i0 < M; i0 += 32) {
      const int i = i0 + lane;
      unsigned hits = __ballot_sync(0xffffffffu, i < M && index[i] == j);
      while (hits) {
        const int r = i0 + __ffs(hits) - 1;
        hits &= hits - 1;
        const S* srow = src + (size_t)r * C;
#pragma unroll
        for (int k = 0; k < kDupCols; k++) {
          const int c = c0 + k * 32 + lane;
          if (c < C) acc[k] += lb_ld(srow + c);
        }
      }
    }
#pragma unroll
    for (int k = 0; k < kDupCols; k++) {
      const int c = c0 + k * 32 + lane;
      if (c < C) lb_st(drow + c, acc[k]);
    }
  }
}

}  // namespace rows_detail

template <typename S, typename D>
void lb_scatter_add_rows(const S* src, D* dst, const int32_t* index, int M, int C, int n_dst, const char* op,
                         OpId op_id, int what) {
  using namespace rows_detail;
  if (M <= 0 || C <= 0 || n_dst <= 0) return;
  CudaScratch cnt(sizeof(int32_t) * (size_t)n_dst);
  lb_check(cudaMemsetAsync(cnt.ptr, 0, sizeof(int32_t) * (size_t)n_dst, cuda_stream()), op);
  count_kernel<<<(M + 255) / 256, 256, 0, cuda_stream()>>>(index, M, n_dst, cnt.as<int32_t>(), cuda_error_slot(),
                                                          op_id, what);
  lb_check_launch(op);
  unique_kernel<S, D><<<lb_blocks((int64_t)M * C, 256), 256, 0, cuda_stream()>>>(src, dst, index, cnt.as<int32_t>(),
                                                                                 M, C, n_dst);
  lb_check_launch(op);
  dup_kernel<S, D><<<(n_dst + 7) / 8, 256, 0, cuda_stream()>>>(src, dst, index, cnt.as<int32_t>(), M, C, n_dst);
  lb_check_launch(op);
}

}  // namespace lb
