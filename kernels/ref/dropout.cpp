// dropout.cpp (ref): the mask is a pure function of (seed, offset + i) (Philox), regenerated in the
// backward pass.
#include "ref_util.h"

namespace lb {

void dropout_forward_ref(const DropoutParams& p) {
  // x, out (n)
  const double s = 1.0 / (1.0 - (double)p.p);
  for (int64_t i = 0; i < p.n; i++) {
    const bool keep = lb_dropout_keep(p.seed, p.offset + (uint64_t)i, p.p);
    ref::store(p.out, i, keep ? ref::load(p.x, i, p.dtype) * s : 0.0, p.dtype);
  }
}

void dropout_backward_ref(const DropoutParams& p) {
  // dout, dx (n); dx = keep ? dout / (1-p) : 0  (=)
  const double s = 1.0 / (1.0 - (double)p.p);
  for (int64_t i = 0; i < p.n; i++) {
    const bool keep = lb_dropout_keep(p.seed, p.offset + (uint64_t)i, p.p);
    ref::store(p.dx, i, keep ? ref::load(p.dout, i, p.dtype) * s : 0.0, p.dtype);
  }
}

}  // namespace lb
