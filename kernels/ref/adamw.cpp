// adamw.cpp (ref): AdamW with bias correction and decoupled weight decay, in f64 per element.
#include <cmath>

#include "ref_util.h"

namespace lb {

void adamw_forward_ref(const AdamwParams& p) {
  // param, grad, m, v (n) f32; param_lowp (n) bf16 or null
  const double b1 = p.beta1, b2 = p.beta2;
  const double bc1 = 1.0 - std::pow(b1, p.step), bc2 = 1.0 - std::pow(b2, p.step);
  for (int64_t i = 0; i < p.n; i++) {
    const double g = (double)p.grad[i] * (double)p.grad_scale;
    const double m = b1 * p.m[i] + (1.0 - b1) * g;
    const double v = b2 * p.v[i] + (1.0 - b2) * g * g;
    const double w = p.param[i];
    const double upd = (m / bc1) / (std::sqrt(v / bc2) + (double)p.eps) + (double)p.weight_decay * w;
    p.m[i] = (float)m;
    p.v[i] = (float)v;
    p.param[i] = (float)(w - (double)p.lr * upd);
    if (p.param_lowp) static_cast<uint16_t*>(p.param_lowp)[i] = lb_f32_to_bf16(p.param[i]);
  }
}

}  // namespace lb
