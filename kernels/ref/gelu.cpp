// gelu.cpp (ref): GELU (erf form) and tanh, elementwise in f64. x may alias out, dx may alias dout:
// every element is read before it is written.
#include <cmath>

#include "ref_util.h"

namespace lb {

void gelu_forward_ref(const ActivationParams& p) {
  // x, out (n)
  for (int64_t i = 0; i < p.n; i++) ref::store(p.out, i, lb_gelu_d(ref::load(p.x, i, p.dtype)), p.dtype);
}
void gelu_backward_ref(const ActivationParams& p) {
  // x, dout, dx (n); dx = dout * gelu'(x)  (=)
  for (int64_t i = 0; i < p.n; i++)
    ref::store(p.dx, i, ref::load(p.dout, i, p.dtype) * lb_gelu_grad_d(ref::load(p.x, i, p.dtype)), p.dtype);
}
void tanh_forward_ref(const ActivationParams& p) {
  for (int64_t i = 0; i < p.n; i++) ref::store(p.out, i, std::tanh(ref::load(p.x, i, p.dtype)), p.dtype);
}
void tanh_backward_ref(const ActivationParams& p) {
  // out, dout, dx (n); dx = dout * (1 - out^2)  (=)
  for (int64_t i = 0; i < p.n; i++) {
    const double y = ref::load(p.out, i, p.dtype);
    ref::store(p.dx, i, ref::load(p.dout, i, p.dtype) * (1.0 - y * y), p.dtype);
  }
}

}  // namespace lb
