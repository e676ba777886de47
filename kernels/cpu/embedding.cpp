// embedding.cpp (cpu): forward threads over tokens. The backward is deterministic without atomics:
// token positions are grouped by destination row with a stable counting sort, and each (row, column
// block) is one task that adds its positions' gradients in increasing position order.
#include <algorithm>
#include <vector>

#include "cpu_util.h"

namespace lb {
namespace {

using cpu::bf16;
constexpr int64_t kColBlock = 256;

void check_ids(const EmbeddingParams& p) {
  const int64_t n = (int64_t)p.B * p.T;
  for (int64_t i = 0; i < n; i++) {
    if (p.ids[i] < 0 || p.ids[i] >= p.V) cpu::index_error("embedding", "ids", i, p.ids[i], p.V);
    if (p.type_ids && (p.type_ids[i] < 0 || p.type_ids[i] >= p.type_vocab))
      cpu::index_error("embedding", "type_ids", i, p.type_ids[i], p.type_vocab);
  }
}

template <class T>
void forward_impl(const EmbeddingParams& p) {
  T* out = static_cast<T*>(p.out);
  const int C = p.C;
  parallel_for((int64_t)p.B * p.T, std::max<int64_t>(1, 4096 / C), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i++) {
      const float* __restrict te = p.wte + (int64_t)p.ids[i] * C;
      const float* __restrict pe = p.wpe + (i % p.T) * C;
      const float* __restrict ty = p.wtt + (p.type_ids ? (int64_t)p.type_ids[i] : 0) * C;
      T* o = out + i * C;
      for (int c = 0; c < C; c++) o[c] = cpu::from_f32<T>(te[c] + pe[c] + ty[c]);
    }
  });
}

// dst[key] += dout[i] for every position i, grouped by key; nkeys rows of dst.
template <class T, class Key>
void grouped_add(const EmbeddingParams& p, float* dst, int64_t nkeys, Key key) {
  const int64_t n = (int64_t)p.B * p.T;
  const int64_t C = p.C;
  thread_local std::vector<int64_t> order_buf, starts_buf;
  cpu::sort_by_key(n, nkeys, key, order_buf, starts_buf);
  const int64_t* order = order_buf.data();
  const int64_t* starts = starts_buf.data();
  // the keys that occur, so tasks are not wasted on empty vocabulary rows
  thread_local std::vector<int64_t> used_buf;
  int64_t* used = cpu::grow(used_buf, (size_t)std::min(n, nkeys) + 1);
  int64_t nused = 0;
  for (int64_t k = 0; k < nkeys; k++)
    if (starts[k + 1] > starts[k]) used[nused++] = k;
  const int64_t ncb = (C + kColBlock - 1) / kColBlock;
  const T* dout = static_cast<const T*>(p.dout);
  parallel_for(nused * ncb, 4, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; task++) {
      const int64_t k = used[task / ncb];
      const int64_t c0 = (task % ncb) * kColBlock, c1 = std::min(C, c0 + kColBlock);
      float* __restrict d = dst + k * C;
      for (int64_t s = starts[k]; s < starts[k + 1]; s++) {
        const T* __restrict g = dout + order[s] * C;
        for (int64_t c = c0; c < c1; c++) d[c] += cpu::to_f32(g[c]);
      }
    }
  });
}

template <class T>
void backward_impl(const EmbeddingParams& p) {
  grouped_add<T>(p, p.dwte, p.V, [&](int64_t i) { return (int64_t)p.ids[i]; });
  if (p.dwpe) grouped_add<T>(p, p.dwpe, p.T, [&](int64_t i) { return i % p.T; });
  if (p.dwtt) grouped_add<T>(p, p.dwtt, p.type_vocab, [&](int64_t i) { return p.type_ids ? (int64_t)p.type_ids[i] : 0; });
}

}  // namespace

void embedding_forward_cpu(const EmbeddingParams& p) {
  // ids, type_ids (B,T); wte (V,C); wpe (max_pos,C); wtt (type_vocab,C); out (B,T,C)
  check_ids(p);
  cpu::with_dtype(p.dtype, [&](auto tag) { forward_impl<decltype(tag)>(p); });
}
// backward (parameter grads +=): dwte[ids] += dout, dwpe[t] += sum_b dout, dwtt[types] += dout
void embedding_backward_cpu(const EmbeddingParams& p) {
  check_ids(p);
  cpu::with_dtype(p.dtype, [&](auto tag) { backward_impl<decltype(tag)>(p); });
}

}  // namespace lb
