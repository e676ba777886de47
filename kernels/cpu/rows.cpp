// rows.cpp (cpu): gather_rows copies rows in parallel. scatter_add_rows groups sources by destination
// (stable counting sort), then each (destination row, column block) is one task that accumulates in
// f32 in order of i and stores once: deterministic, duplicates handled, no atomics.
#include <algorithm>
#include <cstring>
#include <vector>

#include "cpu_util.h"

namespace lb {
namespace {

constexpr int64_t kColBlock = 256;

template <class T>
void scatter_impl(const RowsParams& p) {
  const int64_t C = p.C;
  const T* src = static_cast<const T*>(p.src);
  T* dst = static_cast<T*>(p.dst);
  thread_local std::vector<int64_t> order_buf, starts_buf, used_buf;
  cpu::sort_by_key(p.M, p.n_dst, [&](int64_t i) { return (int64_t)p.index[i]; }, order_buf, starts_buf);
  const int64_t* order = order_buf.data();
  const int64_t* starts = starts_buf.data();
  int64_t* used = cpu::grow(used_buf, (size_t)std::min<int64_t>(p.M, p.n_dst) + 1);
  int64_t nused = 0;
  for (int64_t k = 0; k < p.n_dst; k++)
    if (starts[k + 1] > starts[k]) used[nused++] = k;
  const int64_t ncb = (C + kColBlock - 1) / kColBlock;
  parallel_for(nused * ncb, 4, [&](int64_t begin, int64_t end) {
    float acc[kColBlock];
    for (int64_t task = begin; task < end; task++) {
      const int64_t k = used[task / ncb];
      const int64_t c0 = (task % ncb) * kColBlock, w = std::min(C - c0, kColBlock);
      T* d = dst + k * C + c0;
      for (int64_t c = 0; c < w; c++) acc[c] = cpu::to_f32(d[c]);
      for (int64_t s = starts[k]; s < starts[k + 1]; s++) {
        const T* __restrict g = src + order[s] * C + c0;
        for (int64_t c = 0; c < w; c++) acc[c] += cpu::to_f32(g[c]);
      }
      for (int64_t c = 0; c < w; c++) d[c] = cpu::from_f32<T>(acc[c]);
    }
  });
}

}  // namespace

void gather_rows_forward_cpu(const RowsParams& p) {
  // src (n_src, C); dst (M, C); index (M): dst[i] = src[index[i]]  (=)
  for (int i = 0; i < p.M; i++)
    if (p.index[i] < 0 || p.index[i] >= p.n_src) cpu::index_error("gather_rows", "index", i, p.index[i], p.n_src);
  const size_t row = (size_t)p.C * dtype_size(p.dtype);
  parallel_for(p.M, std::max<int64_t>(1, 16384 / (int64_t)row), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++)
      std::memcpy(static_cast<char*>(p.dst) + (size_t)i * row, static_cast<const char*>(p.src) + (size_t)p.index[i] * row, row);
  });
}

void scatter_add_rows_forward_cpu(const RowsParams& p) {
  // src (M, C); dst (n_dst, C); index (M): dst[index[i]] += src[i]  (+=)
  for (int i = 0; i < p.M; i++)
    if (p.index[i] < 0 || p.index[i] >= p.n_dst) cpu::index_error("scatter_add_rows", "index", i, p.index[i], p.n_dst);
  cpu::with_dtype(p.dtype, [&](auto tag) { scatter_impl<decltype(tag)>(p); });
}

}  // namespace lb
