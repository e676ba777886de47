// online_softmax.h: the online-softmax state used by softmax_xent.cu and the generic attention path.
// Pure __host__ __device__ math (LB_HD from kernels/common.h) with no CUDA include, so a CPU test can
// include it and check it against a two-pass softmax.
#pragma once
#include <cmath>

#include "../common.h"

namespace lb {

// Online softmax (Milakov & Gimelshein): running max m and sum s of exp(x - m).
// -inf inputs (masked) leave the state unchanged.
struct LbSoftmaxState {
  float m, s;
};
LB_HD LbSoftmaxState lb_softmax_init() { return LbSoftmaxState{-INFINITY, 0.0f}; }
LB_HD LbSoftmaxState lb_softmax_push(LbSoftmaxState a, float x) {
  if (x == -INFINITY) return a;
  if (x > a.m) return LbSoftmaxState{x, a.s * expf(a.m - x) + 1.0f};  // exp(-inf) = 0 on the first push
  return LbSoftmaxState{a.m, a.s + expf(x - a.m)};
}
LB_HD LbSoftmaxState lb_softmax_combine(LbSoftmaxState a, LbSoftmaxState b) {
  if (a.m == -INFINITY) return b;
  if (b.m == -INFINITY) return a;
  const float m = a.m > b.m ? a.m : b.m;
  return LbSoftmaxState{m, a.s * expf(a.m - m) + b.s * expf(b.m - m)};
}
// log(sum exp(x)) of the state; -inf when every input was -inf.
LB_HD float lb_softmax_lse(LbSoftmaxState a) { return a.m == -INFINITY ? -INFINITY : a.m + logf(a.s); }

}  // namespace lb
