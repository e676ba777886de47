// gelu.cpp (cpu): GELU (erf form, lb_gelu from common.h, the same scalar math as CUDA) and tanh,
// elementwise over threaded chunks. Aliasing (x == out, dout == dx) is fine: each element is read
// before it is written, by the same thread.
#include <cmath>

#include "cpu_util.h"

namespace lb {
namespace {

constexpr int64_t kGrain = 1 << 14;

template <class T, class F>
void unary(const void* xv, void* outv, int64_t n, F f) {
  const T* x = static_cast<const T*>(xv);
  T* out = static_cast<T*>(outv);
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) out[i] = cpu::from_f32<T>(f(cpu::to_f32(x[i])));
  });
}
template <class T, class F>
void binary(const void* av, const void* bv, void* outv, int64_t n, F f) {
  const T* a = static_cast<const T*>(av);
  const T* b = static_cast<const T*>(bv);
  T* out = static_cast<T*>(outv);
  parallel_for(n, kGrain, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; i++) out[i] = cpu::from_f32<T>(f(cpu::to_f32(a[i]), cpu::to_f32(b[i])));
  });
}

}  // namespace

void gelu_forward_cpu(const ActivationParams& p) {
  // x, out (n)
  cpu::with_dtype(p.dtype, [&](auto tag) { unary<decltype(tag)>(p.x, p.out, p.n, [](float x) { return lb_gelu(x); }); });
}
void gelu_backward_cpu(const ActivationParams& p) {
  // x, dout, dx (n); dx = dout * gelu'(x)  (=)
  cpu::with_dtype(p.dtype, [&](auto tag) {
    binary<decltype(tag)>(p.dout, p.x, p.dx, p.n, [](float g, float x) { return g * lb_gelu_grad(x); });
  });
}
void tanh_forward_cpu(const ActivationParams& p) {
  cpu::with_dtype(p.dtype, [&](auto tag) { unary<decltype(tag)>(p.x, p.out, p.n, [](float x) { return std::tanh(x); }); });
}
void tanh_backward_cpu(const ActivationParams& p) {
  // out, dout, dx (n); dx = dout * (1 - out^2)  (=), as (1 - y)(1 + y): exact-ish near |y| = 1
  cpu::with_dtype(p.dtype, [&](auto tag) {
    binary<decltype(tag)>(p.dout, p.out, p.dx, p.n, [](float g, float y) { return g * ((1.0f - y) * (1.0f + y)); });
  });
}

}  // namespace lb
