// softmax_xent.cpp (cpu): one task per row, on an f32 view of the row (bf16 rows are widened into
// scratch first). Pass 1 is an online max / sum: blocks of kBlock logits, the running sum (8 lanes) is
// rescaled when a block raises the max, and the argmax (first index) is tracked. Pass 2 writes the
// gradient. Both passes use fast_exp and get an AVX2 clone. dlogits may alias logits: pass 2 reads
// each element before writing it.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "cpu_util.h"

namespace lb {
namespace {

using cpu::bf16;
using cpu::fast_exp;
constexpr int kBlock = 256;

// log-sum-exp of z (V) and the first index of its max
LB_SIMD_CLONES float row_lse(const float* __restrict z, int V, int* argmax) {
  float m = -std::numeric_limits<float>::infinity();
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int am = 0;
  for (int j0 = 0; j0 < V; j0 += kBlock) {
    const int w = std::min(kBlock, V - j0);
    const float* __restrict x = z + j0;
    float bm[8];
    for (int l = 0; l < 8; l++) bm[l] = -std::numeric_limits<float>::infinity();
    int i = 0;
    for (; i + 8 <= w; i += 8)
      for (int l = 0; l < 8; l++) bm[l] = x[i + l] > bm[l] ? x[i + l] : bm[l];
    for (int l = 0; i < w; i++, l++) bm[l] = x[i] > bm[l] ? x[i] : bm[l];
    float cm = bm[0];
    for (int l = 1; l < 8; l++) cm = bm[l] > cm ? bm[l] : cm;
    if (cm > m) {  // a strictly larger max: the first index holding it, then rescale the running sum
      for (int k = 0; k < w; k++)
        if (x[k] == cm) { am = j0 + k; break; }
      const float c = fast_exp(m - cm);  // 0 on the first block (m = -inf)
      for (int l = 0; l < 8; l++) acc[l] *= c;
      m = cm;
    }
    i = 0;
    for (; i + 8 <= w; i += 8)
      for (int l = 0; l < 8; l++) acc[l] += fast_exp(x[i + l] - m);
    for (int l = 0; i < w; i++, l++) acc[l] += fast_exp(x[i] - m);
  }
  *argmax = am;
  const float sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  return m + std::log(sum);
}

// d (V) = softmax(z) * gs, from the row's lse; d may alias z
LB_SIMD_CLONES void row_grad(const float* z, int V, float lse, float gs, float* d) {
  for (int j = 0; j < V; j++) d[j] = fast_exp(z[j] - lse) * gs;
}

template <class T>
void impl(const SoftmaxXentParams& p) {
  const T* logits = static_cast<const T*>(p.logits);
  T* dlogits = static_cast<T*>(p.dlogits);
  const int V = p.V;
  parallel_for(p.N, std::max<int64_t>(1, 8192 / V), [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> buf;
    for (int64_t r = begin; r < end; r++) {
      const int32_t y = p.labels[r];
      if (y == p.ignore_index) {
        p.losses[r] = 0.0f;
        if (p.correct) p.correct[r] = 0;
        if (dlogits) std::fill(dlogits + r * p.ld, dlogits + r * p.ld + V, cpu::from_f32<T>(0.0f));
        continue;
      }
      const float* z;  // the row in f32
      float* g;        // where the f32 gradient goes
      if constexpr (std::is_same_v<T, float>) {
        z = logits + r * p.ld;
        g = dlogits ? dlogits + r * p.ld : nullptr;
      } else {
        float* zb = cpu::grow(buf, (size_t)V);
        const T* src = logits + r * p.ld;
        for (int j = 0; j < V; j++) zb[j] = cpu::to_f32(src[j]);
        z = zb;
        g = zb;
      }
      int argmax = 0;
      const float lse = row_lse(z, V, &argmax);
      const float zy = z[y];
      p.losses[r] = lse - zy;
      if (p.correct) p.correct[r] = argmax == y ? 1 : 0;
      if (dlogits) {
        row_grad(z, V, lse, p.grad_scale, g);
        g[y] = (fast_exp(zy - lse) - 1.0f) * p.grad_scale;
        if constexpr (!std::is_same_v<T, float>) {
          T* d = dlogits + r * p.ld;
          for (int j = 0; j < V; j++) d[j] = cpu::from_f32<T>(g[j]);
        }
      }
    }
  });
}

}  // namespace

void softmax_xent_forward_cpu(const SoftmaxXentParams& p) {
  // logits, dlogits (N, V) row stride ld; labels, losses, correct (N); dlogits = (softmax - onehot) * scale (=)
  for (int r = 0; r < p.N; r++) {  // validate first, so a bad label leaves every output untouched
    const int32_t y = p.labels[r];
    if (y != p.ignore_index && (y < 0 || y >= p.V)) cpu::index_error("softmax_xent", "labels", r, y, p.V);
  }
  cpu::with_dtype(p.dtype, [&](auto tag) { impl<decltype(tag)>(p); });
}

}  // namespace lb
