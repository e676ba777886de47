// rows.cu: gather_rows (dst[i] = src[index[i]], =) and scatter_add_rows (dst[index[i]] += src[i], +=,
// duplicates summed in order of i, deterministic: see rows.cuh).
// A gather index outside [0, n_src) cannot throw from the device: that row is written as NaN and the
// error recorded for the next synchronize to throw.
#include "rows.cuh"

namespace lb {
namespace {

template <typename T>
__global__ void gather_kernel(const T* src, T* dst, const int32_t* index, int M, int C, int n_src,
                              LbDeviceError* err) {
  // src (n_src, C), dst (M, C), index (M)
  const int64_t total = (int64_t)M * C;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
    const int i = (int)(e / C), c = (int)(e % C);
    const int j = index[i];
    const bool ok = j >= 0 && j < n_src;
    if (!ok && c == 0) lb_report_index_error(err, OpId::gather_rows, kWhatIndex, i, j, n_src);
    lb_st(dst + e, ok ? lb_ld(src + (size_t)j * C + c) : NAN);
  }
}

}  // namespace

void gather_rows_forward_cuda(const RowsParams& p) {
  if (p.M <= 0 || p.C <= 0) return;
  LB_FLOAT_DISPATCH("gather_rows", p.dtype, T,
                    gather_kernel<T><<<lb_blocks((int64_t)p.M * p.C, 256), 256, 0, cuda_stream()>>>(
                        (const T*)p.src, (T*)p.dst, p.index, p.M, p.C, p.n_src, cuda_error_slot()));
  lb_check_launch("gather_rows");
}

void scatter_add_rows_forward_cuda(const RowsParams& p) {
  LB_FLOAT_DISPATCH("scatter_add_rows", p.dtype, T,
                    lb_scatter_add_rows<T, T>((const T*)p.src, (T*)p.dst, p.index, p.M, p.C, p.n_dst,
                                              "scatter_add_rows", OpId::scatter_add_rows, kWhatIndex));
}

}  // namespace lb
