// adamw.cpp (cpu): fused AdamW over f32 master weights, one pass per element (the bf16 copy is written
// in the same pass), threaded; bias corrections are computed once per call in f64. The AVX-512 path
// performs the same IEEE operations per element as the scalar loop (no FMA) and covers tails with
// masks, so results do not depend on the ISA path or on where chunk boundaries fall.
#include <cmath>

#include "cpu_util.h"

namespace lb {
namespace {

struct Consts {
  float b1, b2, c1, c2, inv_bc1, inv_bc2, lr, eps, wd, gs;  // c1 = 1 - b1, c2 = 1 - b2
};

void adamw_scalar(const Consts& k, float* __restrict w, float* __restrict m, float* __restrict v,
                  const float* __restrict g, uint16_t* __restrict lowp, int64_t b, int64_t e) {
  for (int64_t i = b; i < e; i++) {
    const float gi = g[i] * k.gs;
    const float mi = k.b1 * m[i] + k.c1 * gi;
    const float vi = k.b2 * v[i] + k.c2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    w[i] -= k.lr * ((mi * k.inv_bc1) / (std::sqrt(vi * k.inv_bc2) + k.eps) + k.wd * w[i]);
    if (lowp) lowp[i] = lb_f32_to_bf16(w[i]);
  }
}

#if LB_X86_SIMD
LB_AVX512_BEGIN
LB_AVX512 void adamw_avx512(const Consts& k, float* w, float* m, float* v, const float* g, uint16_t* lowp, int64_t b, int64_t e) {
  const __m512 b1 = _mm512_set1_ps(k.b1), b2 = _mm512_set1_ps(k.b2), c1 = _mm512_set1_ps(k.c1), c2 = _mm512_set1_ps(k.c2);
  const __m512 ib1 = _mm512_set1_ps(k.inv_bc1), ib2 = _mm512_set1_ps(k.inv_bc2), lr = _mm512_set1_ps(k.lr);
  const __m512 eps = _mm512_set1_ps(k.eps), wd = _mm512_set1_ps(k.wd), gs = _mm512_set1_ps(k.gs);
  cpu::for_each16(b, e, [&](int64_t i, __mmask16 mk) {  // whole vectors, then one masked tail
    const __m512 gi = _mm512_mul_ps(cpu::maskz_loadu(mk, g + i), gs);
    const __m512 mi = _mm512_add_ps(_mm512_mul_ps(b1, cpu::maskz_loadu(mk, m + i)), _mm512_mul_ps(c1, gi));
    const __m512 vi = _mm512_add_ps(_mm512_mul_ps(b2, cpu::maskz_loadu(mk, v + i)), _mm512_mul_ps(_mm512_mul_ps(c2, gi), gi));
    cpu::mask_storeu(m + i, mk, mi);
    cpu::mask_storeu(v + i, mk, vi);
    const __m512 wi = cpu::maskz_loadu(mk, w + i);
    const __m512 den = _mm512_add_ps(_mm512_sqrt_ps(_mm512_mul_ps(vi, ib2)), eps);
    const __m512 upd = _mm512_add_ps(_mm512_div_ps(_mm512_mul_ps(mi, ib1), den), _mm512_mul_ps(wd, wi));
    const __m512 wn = _mm512_sub_ps(wi, _mm512_mul_ps(lr, upd));
    cpu::mask_storeu(w + i, mk, wn);
    if (lowp) cpu::store16(lowp + i, mk, wn);
  });
}
LB_AVX512_END
#endif

using AdamwFn = void (*)(const Consts&, float*, float*, float*, const float*, uint16_t*, int64_t, int64_t);
AdamwFn pick() {
#if LB_X86_SIMD
  if (cpu::has_avx512()) return &adamw_avx512;
#endif
  return &adamw_scalar;
}
const AdamwFn g_adamw = pick();

}  // namespace

void adamw_forward_cpu(const AdamwParams& p) {
  // param, grad, m, v (n) f32; param_lowp (n) bf16 or null
  Consts k;
  k.b1 = p.beta1; k.b2 = p.beta2; k.c1 = 1.0f - p.beta1; k.c2 = 1.0f - p.beta2;
  k.inv_bc1 = (float)(1.0 / (1.0 - std::pow((double)p.beta1, p.step)));
  k.inv_bc2 = (float)(1.0 / (1.0 - std::pow((double)p.beta2, p.step)));
  k.lr = p.lr; k.eps = p.eps; k.wd = p.weight_decay; k.gs = p.grad_scale;
  uint16_t* lowp = static_cast<uint16_t*>(p.param_lowp);
  parallel_for(p.n, 1 << 14, [&](int64_t b, int64_t e) { g_adamw(k, p.param, p.m, p.v, p.grad, lowp, b, e); });
}

}  // namespace lb
