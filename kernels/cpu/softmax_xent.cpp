// softmax_xent.cpp (cpu): one task per row. Pass 1 is an online max / sum over the row (rescaling the
// running sum whenever the max grows) that also tracks the argmax; pass 2 writes the gradient.
// dlogits may alias logits: pass 2 reads each element before writing it.
#include <cmath>
#include <limits>

#include "cpu_util.h"

namespace lb {
namespace {

template <class T>
void impl(const SoftmaxXentParams& p) {
  const T* logits = static_cast<const T*>(p.logits);
  T* dlogits = static_cast<T*>(p.dlogits);
  const int V = p.V;
  parallel_for(p.N, std::max<int64_t>(1, 8192 / V), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; r++) {
      const T* z = logits + r * p.ld;
      const int32_t y = p.labels[r];
      if (y == p.ignore_index) {
        p.losses[r] = 0.0f;
        if (p.correct) p.correct[r] = 0;
        if (dlogits) {
          T* d = dlogits + r * p.ld;
          for (int j = 0; j < V; j++) d[j] = cpu::from_f32<T>(0.0f);
        }
        continue;
      }
      float mx = -std::numeric_limits<float>::infinity(), sum = 0.0f;
      int argmax = 0;
      for (int j = 0; j < V; j++) {
        const float v = cpu::to_f32(z[j]);
        if (v > mx) {
          sum = sum * std::exp(mx - v) + 1.0f;  // first element: 0 * exp(-inf) + 1
          mx = v;
          argmax = j;
        } else {
          sum += std::exp(v - mx);
        }
      }
      const float lse = mx + std::log(sum);
      const float zy = cpu::to_f32(z[y]);
      p.losses[r] = lse - zy;
      if (p.correct) p.correct[r] = argmax == y ? 1 : 0;
      if (dlogits) {
        T* d = dlogits + r * p.ld;
        const float gs = p.grad_scale;
        for (int j = 0; j < V; j++) d[j] = cpu::from_f32<T>(std::exp(cpu::to_f32(z[j]) - lse) * gs);
        d[y] = cpu::from_f32<T>((std::exp(zy - lse) - 1.0f) * gs);
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
