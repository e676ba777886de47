// grad_norm.cpp (ref): sum of squares in f64.
#include "ref_util.h"

namespace lb {

void grad_norm_forward_ref(const GradNormParams& p) {
  // x (n); out (1)
  double acc = 0.0;
  for (int64_t i = 0; i < p.n; i++) acc += (double)p.x[i] * (double)p.x[i];
  p.out[0] = (float)acc;
}

}  // namespace lb
