// embedding.cpp (ref): out[b,t] = wte[ids] + wpe[t] + wtt[types] in f64. The backward sums every
// destination row's contributions in f64 (grouped by a stable sort, so in order of position) and adds
// the total once.
#include <algorithm>
#include <numeric>
#include <vector>

#include "ref_util.h"

namespace lb {
namespace {

void check_ids(const EmbeddingParams& p) {
  const int64_t n = (int64_t)p.B * p.T;
  for (int64_t i = 0; i < n; i++) {
    if (p.ids[i] < 0 || p.ids[i] >= p.V) ref::index_error("embedding", "ids", i, p.ids[i], p.V);
    if (p.type_ids && (p.type_ids[i] < 0 || p.type_ids[i] >= p.type_vocab))
      ref::index_error("embedding", "type_ids", i, p.type_ids[i], p.type_vocab);
  }
}

// dst[key(i)] += sum_i dout[i] over positions i, in f64 per destination row.
template <class Key>
void grouped_add(const EmbeddingParams& p, float* dst, Key key) {
  const int64_t n = (int64_t)p.B * p.T;
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return key(a) < key(b); });
  std::vector<double> acc(p.C);
  for (int64_t s = 0; s < n;) {
    const int64_t k = key(order[s]);
    std::fill(acc.begin(), acc.end(), 0.0);
    int64_t e = s;
    for (; e < n && key(order[e]) == k; e++)
      for (int c = 0; c < p.C; c++) acc[c] += ref::load(p.dout, order[e] * p.C + c, p.dtype);
    for (int c = 0; c < p.C; c++) dst[k * p.C + c] = (float)((double)dst[k * p.C + c] + acc[c]);
    s = e;
  }
}

}  // namespace

void embedding_forward_ref(const EmbeddingParams& p) {
  // ids, type_ids (B,T); wte (V,C); wpe (max_pos,C); wtt (type_vocab,C); out (B,T,C)
  check_ids(p);
  for (int b = 0; b < p.B; b++)
    for (int t = 0; t < p.T; t++) {
      const int64_t i = (int64_t)b * p.T + t;
      const int64_t id = p.ids[i], tt = p.type_ids ? p.type_ids[i] : 0;
      for (int c = 0; c < p.C; c++)
        ref::store(p.out, i * p.C + c,
                   (double)p.wte[id * p.C + c] + (double)p.wpe[(int64_t)t * p.C + c] + (double)p.wtt[tt * p.C + c], p.dtype);
    }
}

// backward (parameter grads +=): dwte[ids] += dout, dwpe[t] += sum_b dout, dwtt[types] += dout.
void embedding_backward_ref(const EmbeddingParams& p) {
  check_ids(p);
  grouped_add(p, p.dwte, [&](int64_t i) { return (int64_t)p.ids[i]; });
  if (p.dwpe) grouped_add(p, p.dwpe, [&](int64_t i) { return i % p.T; });
  if (p.dwtt) grouped_add(p, p.dwtt, [&](int64_t i) { return p.type_ids ? (int64_t)p.type_ids[i] : 0; });
}

}  // namespace lb
