// rows.cpp (ref): gather_rows copies rows exactly; scatter_add_rows sums each destination's sources in
// f64 (in order of i) and adds the total once.
#include <algorithm>
#include <cstring>
#include <numeric>
#include <vector>

#include "ref_util.h"

namespace lb {

void gather_rows_forward_ref(const RowsParams& p) {
  // src (n_src, C); dst (M, C); index (M)
  for (int i = 0; i < p.M; i++)
    if (p.index[i] < 0 || p.index[i] >= p.n_src) ref::index_error("gather_rows", "index", i, p.index[i], p.n_src);
  const size_t row = (size_t)p.C * dtype_size(p.dtype);
  for (int i = 0; i < p.M; i++)
    std::memmove(static_cast<char*>(p.dst) + (size_t)i * row, static_cast<const char*>(p.src) + (size_t)p.index[i] * row, row);
}

void scatter_add_rows_forward_ref(const RowsParams& p) {
  // src (M, C); dst (n_dst, C) +=; index (M), duplicates allowed
  for (int i = 0; i < p.M; i++)
    if (p.index[i] < 0 || p.index[i] >= p.n_dst) ref::index_error("scatter_add_rows", "index", i, p.index[i], p.n_dst);
  std::vector<int> order(p.M);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return p.index[a] < p.index[b]; });
  std::vector<double> acc(p.C);
  for (int s = 0; s < p.M;) {
    const int64_t k = p.index[order[s]];
    for (int c = 0; c < p.C; c++) acc[c] = ref::load(p.dst, k * p.C + c, p.dtype);
    int e = s;
    for (; e < p.M && p.index[order[e]] == k; e++)
      for (int c = 0; c < p.C; c++) acc[c] += ref::load(p.src, (int64_t)order[e] * p.C + c, p.dtype);
    for (int c = 0; c < p.C; c++) ref::store(p.dst, k * p.C + c, acc[c], p.dtype);
    s = e;
  }
}

}  // namespace lb
