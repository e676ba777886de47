// adamw.cpp (cpu): fused AdamW over f32 master weights, one pass per element, threaded; bias
// corrections are computed once per call in f64.
#include <cmath>

#include "cpu_util.h"

namespace lb {

void adamw_forward_cpu(const AdamwParams& p) {
  // param, grad, m, v (n) f32; param_lowp (n) bf16 or null
  const float b1 = p.beta1, b2 = p.beta2;
  const float inv_bc1 = (float)(1.0 / (1.0 - std::pow((double)p.beta1, p.step)));
  const float inv_bc2 = (float)(1.0 / (1.0 - std::pow((double)p.beta2, p.step)));
  const float lr = p.lr, eps = p.eps, wd = p.weight_decay, gs = p.grad_scale;
  uint16_t* lowp = static_cast<uint16_t*>(p.param_lowp);
  parallel_for(p.n, 1 << 14, [&](int64_t b, int64_t e) {
    float* __restrict w = p.param;
    float* __restrict m = p.m;
    float* __restrict v = p.v;
    const float* __restrict g = p.grad;
    for (int64_t i = b; i < e; i++) {
      const float gi = g[i] * gs;
      const float mi = b1 * m[i] + (1.0f - b1) * gi;
      const float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
      m[i] = mi;
      v[i] = vi;
      w[i] -= lr * ((mi * inv_bc1) / (std::sqrt(vi * inv_bc2) + eps) + wd * w[i]);
    }
    if (lowp)
      for (int64_t i = b; i < e; i++) lowp[i] = lb_f32_to_bf16(w[i]);
  });
}

}  // namespace lb
