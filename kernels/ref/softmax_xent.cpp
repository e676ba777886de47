// softmax_xent.cpp (ref): per row, f64 max / log-sum-exp, loss, argmax and (softmax - onehot) * scale.
#include <cmath>
#include <limits>

#include "ref_util.h"

namespace lb {

void softmax_xent_forward_ref(const SoftmaxXentParams& p) {
  // logits, dlogits (N, V) row stride ld; labels, losses, correct (N)
  for (int r = 0; r < p.N; r++) {  // validate first, so a bad label leaves every output untouched
    const int32_t y = p.labels[r];
    if (y != p.ignore_index && (y < 0 || y >= p.V)) ref::index_error("softmax_xent", "labels", r, y, p.V);
  }
  for (int r = 0; r < p.N; r++) {
    const int64_t o = (int64_t)r * p.ld;
    const int32_t y = p.labels[r];
    if (y == p.ignore_index) {
      p.losses[r] = 0.0f;
      if (p.correct) p.correct[r] = 0;
      if (p.dlogits)
        for (int j = 0; j < p.V; j++) ref::store(p.dlogits, o + j, 0.0, p.dtype);
      continue;
    }
    double mx = -std::numeric_limits<double>::infinity();
    int argmax = 0;
    for (int j = 0; j < p.V; j++) {
      const double z = ref::load(p.logits, o + j, p.dtype);
      if (z > mx) { mx = z; argmax = j; }
    }
    double sum = 0.0;
    for (int j = 0; j < p.V; j++) sum += std::exp(ref::load(p.logits, o + j, p.dtype) - mx);
    const double lse = mx + std::log(sum);
    p.losses[r] = (float)(lse - ref::load(p.logits, o + y, p.dtype));
    if (p.correct) p.correct[r] = argmax == y ? 1 : 0;
    if (p.dlogits)
      for (int j = 0; j < p.V; j++) {
        const double prob = std::exp(ref::load(p.logits, o + j, p.dtype) - lse);
        ref::store(p.dlogits, o + j, (prob - (j == y ? 1.0 : 0.0)) * (double)p.grad_scale, p.dtype);
      }
  }
}

}  // namespace lb
