// gelu.cpp (cpu): GELU (erf form) and tanh. GELU uses the branch-free Phi of the GEMM epilogue
// (gemm_gelu.h: a rational-in-t factor times exp(-x^2/2), one exp shared by Phi and phi in the
// backward): libm's scalar erff/expf made it ~1% of copy bandwidth. Computed elementwise over threaded
// chunks; with AVX-512 (f32 and bf16) the FMA form of that math (the forward: a piecewise table of
// gelu(-|x|) instead, gelu_table16 in gemm_gelu.h), masked tails, so an element's result does not
// depend on where a chunk ends. Aliasing (x == out, dout == dx) is fine: each element is read before
// it is written, by the same thread.
#include <cmath>

#include "cpu_util.h"
#include "gemm_gelu.h"

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

// f32 fast paths: plain loops over the polynomial GELU vectorise; AVX-512F, AVX2 and baseline variants
// (LB_ISA_VARIANTS3), picked per call.
LB_ISA_BODY void gelu_f32_body(const float* __restrict x, float* __restrict out, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = gemm::gelu_fast(x[i]);
}
LB_ISA_VARIANTS3(void, gelu_f32, (const float* __restrict x, float* __restrict out, int64_t n), (x, out, n))
// In place, the same variants: the baseline-ISA lambda below has no FMA to contract into, so its bits
// differed from these (a value's result depended on whether out was x).
LB_ISA_BODY void gelu_inplace_f32_body(float* __restrict x, int64_t n) {
  for (int64_t i = 0; i < n; i++) x[i] = gemm::gelu_fast(x[i]);
}
LB_ISA_VARIANTS3(void, gelu_inplace_f32, (float* __restrict x, int64_t n), (x, n))
LB_ISA_BODY void gelu_grad_f32_body(const float* __restrict g, const float* __restrict x, float* __restrict dx, int64_t n) {
  for (int64_t i = 0; i < n; i++) dx[i] = g[i] * gemm::gelu_grad_fast(x[i]);
}
LB_ISA_VARIANTS3(void, gelu_grad_f32, (const float* __restrict g, const float* __restrict x, float* __restrict dx, int64_t n), (g, x, dx, n))
// The model runs the backward in place (dx == dout): a separate function keeps the restrict promise.
LB_ISA_BODY void gelu_grad_inplace_f32_body(float* __restrict gdx, const float* __restrict x, int64_t n) {
  for (int64_t i = 0; i < n; i++) gdx[i] *= gemm::gelu_grad_fast(x[i]);
}
LB_ISA_VARIANTS3(void, gelu_grad_inplace_f32, (float* __restrict gdx, const float* __restrict x, int64_t n), (gdx, x, n))
// dx over x (dx == x != dout), for the same reason as gelu_inplace_f32
LB_ISA_BODY void gelu_grad_over_x_f32_body(const float* __restrict g, float* __restrict xdx, int64_t n) {
  for (int64_t i = 0; i < n; i++) xdx[i] = g[i] * gemm::gelu_grad_fast(xdx[i]);
}
LB_ISA_VARIANTS3(void, gelu_grad_over_x_f32, (const float* __restrict g, float* __restrict xdx, int64_t n), (g, xdx, n))

// Runs f on [b, e) in whole blocks of 16 values, the last partial block through a padded copy:
// every value then takes the loop's vector body, where the compiler's remainder code rounded some
// values 1 ulp differently (a value's result depended on where the array ended). in: the arrays read
// (their tail copied in), out: the one written (its tail copied back). f(offset, n, pad): with pad
// null, run on the arrays at offset; else on pad[0..NIn) into pad[NIn], n = 16.
template <int NIn, class F>
void whole_blocks(int64_t b, int64_t e, const float* const (&in)[NIn], float* out, F f) {
  const int64_t n16 = (e - b) & ~int64_t(15);
  f(b, n16, nullptr);
  if (n16 == e - b) return;
  const int64_t t0 = b + n16, nt = e - t0;
  float pad[NIn + 1][16] = {};
  for (int k = 0; k < NIn; k++)
    for (int64_t i = 0; i < nt; i++) pad[k][i] = in[k][t0 + i];
  f(0, 16, pad);
  for (int64_t i = 0; i < nt; i++) out[t0 + i] = pad[NIn][i];
}

#if LB_X86_SIMD
LB_AVX512_BEGIN
constexpr int kVecs = 4;  // vectors in flight per iteration

// Whole groups of kVecs vectors first, with constant masks: the masked form in the main loop (a mask
// per vector, computed from the bounds) made the forward 1.04-1.06x slower, 1.12-1.2x with the log2
// Phi table form the forward used before gelu_table16; the rest (under 16 kVecs values) goes through
// the masked loop.
template <class T>
LB_AVX512 void gelu_avx512(const T* x, T* out, int64_t b, int64_t e) {
  int64_t i = b;
  for (; i + 16 * kVecs <= e; i += 16 * kVecs) {
    __m512 v[kVecs];
    for (int k = 0; k < kVecs; k++) v[k] = cpu::load16(x + i + 16 * k, (__mmask16)0xffff);
    gemm::gelu_table16<kVecs>(v);
    for (int k = 0; k < kVecs; k++) cpu::store16(out + i + 16 * k, (__mmask16)0xffff, v[k]);
  }
  for (; i < e; i += 16 * kVecs) {
    __mmask16 m[kVecs];
    __m512 v[kVecs];
    for (int k = 0; k < kVecs; k++) {
      m[k] = i + 16 * k < e ? cpu::tail_mask(e - i - 16 * k) : (__mmask16)0;
      v[k] = cpu::load16(x + i + 16 * k, m[k]);
    }
    gemm::gelu_table16<kVecs>(v);
    for (int k = 0; k < kVecs; k++) cpu::store16(out + i + 16 * k, m[k], v[k]);
  }
}
template <class T>
LB_AVX512 void gelu_grad_avx512(const T* g, const T* x, T* dx, int64_t b, int64_t e) {
  int64_t i = b;
  for (; i + 16 * kVecs <= e; i += 16 * kVecs) {
    __m512 v[kVecs];
    for (int k = 0; k < kVecs; k++) v[k] = cpu::load16(x + i + 16 * k, (__mmask16)0xffff);
    gemm::gelu_grad16<kVecs>(v);
    for (int k = 0; k < kVecs; k++)
      cpu::store16(dx + i + 16 * k, (__mmask16)0xffff, _mm512_mul_ps(cpu::load16(g + i + 16 * k, (__mmask16)0xffff), v[k]));
  }
  for (; i < e; i += 16 * kVecs) {
    __mmask16 m[kVecs];
    __m512 v[kVecs];
    for (int k = 0; k < kVecs; k++) {
      m[k] = i + 16 * k < e ? cpu::tail_mask(e - i - 16 * k) : (__mmask16)0;
      v[k] = cpu::load16(x + i + 16 * k, m[k]);
    }
    gemm::gelu_grad16<kVecs>(v);
    for (int k = 0; k < kVecs; k++) cpu::store16(dx + i + 16 * k, m[k], _mm512_mul_ps(cpu::load16(g + i + 16 * k, m[k]), v[k]));
  }
}
LB_AVX512_END
#endif

}  // namespace

void gelu_forward_cpu(const ActivationParams& p) {
  // x, out (n)
#if LB_X86_SIMD
  if (cpu::has_avx512())
    return cpu::with_dtype(p.dtype, [&](auto tag) {
      using T = decltype(tag);
      const T* x = static_cast<const T*>(p.x);
      T* out = static_cast<T*>(p.out);
      parallel_for(p.n, kGrain, [&](int64_t b, int64_t e) { gelu_avx512<T>(x, out, b, e); });
    });
#endif
  if (p.dtype == DType::F32) {
    const float* x = static_cast<const float*>(p.x);
    float* out = static_cast<float*>(p.out);
    parallel_for(p.n, kGrain, [&](int64_t b, int64_t e) {
      const float* const in[1] = {x};
      whole_blocks<1>(b, e, in, out, [&](int64_t o, int64_t n, float (*pad)[16]) {
        if (pad) gelu_f32(pad[0], pad[1], n);
        else if (p.x == p.out) gelu_inplace_f32(out + o, n);
        else gelu_f32(x + o, out + o, n);
      });
    });
    return;
  }
  cpu::with_dtype(p.dtype, [&](auto tag) { unary<decltype(tag)>(p.x, p.out, p.n, [](float x) { return gemm::gelu_fast(x); }); });
}
void gelu_backward_cpu(const ActivationParams& p) {
  // x, dout, dx (n); dx = dout * gelu'(x)  (=)
#if LB_X86_SIMD
  if (cpu::has_avx512())
    return cpu::with_dtype(p.dtype, [&](auto tag) {
      using T = decltype(tag);
      const T* g = static_cast<const T*>(p.dout);
      const T* x = static_cast<const T*>(p.x);
      T* dx = static_cast<T*>(p.dx);
      parallel_for(p.n, kGrain, [&](int64_t b, int64_t e) { gelu_grad_avx512<T>(g, x, dx, b, e); });
    });
#endif
  if (p.dtype == DType::F32 && !(p.dx == p.x && p.dx == p.dout)) {
    const float* g = static_cast<const float*>(p.dout);
    const float* x = static_cast<const float*>(p.x);
    float* dx = static_cast<float*>(p.dx);
    parallel_for(p.n, kGrain, [&](int64_t b, int64_t e) {
      const float* const in[2] = {g, x};
      whole_blocks<2>(b, e, in, dx, [&](int64_t o, int64_t n, float (*pad)[16]) {
        if (pad) gelu_grad_f32(pad[0], pad[1], pad[2], n);
        else if (dx == x) gelu_grad_over_x_f32(g + o, dx + o, n);
        else if (dx == g) gelu_grad_inplace_f32(dx + o, x + o, n);
        else gelu_grad_f32(g + o, x + o, dx + o, n);
      });
    });
    return;
  }
  cpu::with_dtype(p.dtype, [&](auto tag) {
    binary<decltype(tag)>(p.dout, p.x, p.dx, p.n, [](float g, float x) { return g * gemm::gelu_grad_fast(x); });
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
