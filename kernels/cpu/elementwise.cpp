// elementwise.cpp (cpu): axpby, scale, fill, copy: memory-bound loops over threaded chunks. Aliasing
// of out with a or b is fine: each element is read before it is written, by the same thread.
#include <climits>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "cpu_util.h"

namespace lb {
namespace {

constexpr int64_t kGrain = 1 << 15;
using cpu::bf16;

static int32_t fill_i32_value(float value) {  // truncated toward zero; outside the i32 range is an error
  const double t = std::trunc((double)value);
  if (!(t >= (double)INT_MIN && t <= (double)INT_MAX))
    throw std::out_of_range("fill: value " + std::to_string(value) + " does not fit in i32");
  return (int32_t)t;
}

// out and x either the same array or disjoint: then 16 at a time gives the loop's results
inline bool same_or_disjoint(const void* out, const void* x, int64_t bytes) {
  if (!x || out == x) return true;
  const char *o = static_cast<const char*>(out), *c = static_cast<const char*>(x);
  return o + bytes <= c || c + bytes <= o;
}

#if LB_X86_SIMD
LB_AVX512_BEGIN
// The loops below with explicit vectors: the addon is built for baseline x86-64, where GCC vectorises
// them 4 wide and their speed moved with code placement (axpby in place at bert-mini took 1.4x the time
// after an unrelated change elsewhere in the addon). alpha a + beta b as two multiplies and an add, not
// an FMA: the same bits as the loop.
// Whole vectors, then one masked tail (cpu::for_each16).
template <class T>
LB_AVX512 void axpby_avx512(const T* a, const T* b, T* out, float alpha, float beta, int64_t s, int64_t e) {
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  cpu::for_each16(s, e, [&](int64_t i, __mmask16 m) {
    __m512 v = _mm512_mul_ps(va, cpu::load16(a + i, m));
    if (b) v = _mm512_add_ps(v, _mm512_mul_ps(vb, cpu::load16(b + i, m)));
    cpu::store16(out + i, m, v);
  });
}
template <class T>
LB_AVX512 void scale_avx512(T* x, float s, int64_t b, int64_t e) {
  const __m512 vs = _mm512_set1_ps(s);
  cpu::for_each16(b, e, [&](int64_t i, __mmask16 m) { cpu::store16(x + i, m, _mm512_mul_ps(cpu::load16(x + i, m), vs)); });
}
// dst = src converted (f32 <-> bf16), cpu::convert16
template <class S, class D>
LB_AVX512 void cast_avx512(const S* src, D* dst, int64_t b, int64_t e) {
  cpu::convert16(src + b, dst + b, e - b);
}
LB_AVX512_END
#endif

}  // namespace

void axpby_forward_cpu(const AxpbyParams& p) {
  // a, b, out (n); b may be null
  cpu::with_dtype(p.dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* a = static_cast<const T*>(p.a);
    const T* b = static_cast<const T*>(p.b);
    T* out = static_cast<T*>(p.out);
    const float alpha = p.alpha, beta = p.beta;
#if LB_X86_SIMD
    const int64_t bytes = p.n * (int64_t)sizeof(T);
    if (cpu::has_avx512() && same_or_disjoint(out, a, bytes) && same_or_disjoint(out, b, bytes))
      return parallel_for(p.n, kGrain, [&](int64_t s, int64_t e) { axpby_avx512<T>(a, b, out, alpha, beta, s, e); });
#endif
    parallel_for(p.n, kGrain, [&](int64_t s, int64_t e) {
      if (b)
        for (int64_t i = s; i < e; i++) out[i] = cpu::from_f32<T>(alpha * cpu::to_f32(a[i]) + beta * cpu::to_f32(b[i]));
      else
        for (int64_t i = s; i < e; i++) out[i] = cpu::from_f32<T>(alpha * cpu::to_f32(a[i]));
    });
  });
}

void scale_forward_cpu(const ScaleParams& p) {
  // x (n) *= s
  cpu::with_dtype(p.dtype, [&](auto tag) {
    using T = decltype(tag);
    T* x = static_cast<T*>(p.x);
    const float s = p.s;
#if LB_X86_SIMD
    if (cpu::has_avx512()) return parallel_for(p.n, kGrain, [&](int64_t b, int64_t e) { scale_avx512<T>(x, s, b, e); });
#endif
    parallel_for(p.n, kGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; i++) x[i] = cpu::from_f32<T>(cpu::to_f32(x[i]) * s);
    });
  });
}

void fill_forward_cpu(const FillParams& p) {
  // x (n) = value
  if (p.value == 0.0f && !std::signbit(p.value)) {
    // +0 is all zero bits in every dtype: memset, whose string stores write whole lines without first
    // reading them (a plain store loop reads each line it writes: 0.6-0.74 of a copy's rate)
    char* x = static_cast<char*>(p.x);
    const size_t es = dtype_size(p.dtype);
    parallel_for(p.n, kGrain, [&](int64_t b, int64_t e) { std::memset(x + b * es, 0, (size_t)(e - b) * es); });
    return;
  }
  if (p.dtype == DType::I32) {
    const int32_t v = fill_i32_value(p.value);
    int32_t* x = static_cast<int32_t*>(p.x);
    parallel_for(p.n, kGrain, [&](int64_t b, int64_t e) { std::fill(x + b, x + e, v); });
    return;
  }
  cpu::with_dtype(p.dtype, [&](auto tag) {
    using T = decltype(tag);
    const T v = cpu::from_f32<T>(p.value);
    T* x = static_cast<T*>(p.x);
    parallel_for(p.n, kGrain, [&](int64_t b, int64_t e) { std::fill(x + b, x + e, v); });
  });
}

void copy_forward_cpu(const CopyParams& p) {
  // src, dst (n): dst = cast(src)
  if (p.src_dtype == p.dst_dtype) {
    const size_t es = dtype_size(p.src_dtype);
    if (p.src == p.dst) return;
    const char* s = static_cast<const char*>(p.src);
    char* d = static_cast<char*>(p.dst);
    // overlapping views: one serial memmove keeps the semantics of a plain copy
    if (d < s + (size_t)p.n * es && s < d + (size_t)p.n * es) {
      std::memmove(d, s, (size_t)p.n * es);
      return;
    }
    parallel_for(p.n, kGrain, [&](int64_t b, int64_t e) { std::memcpy(d + b * es, s + b * es, (size_t)(e - b) * es); });
    return;
  }
  if (p.src_dtype == DType::F32 && p.dst_dtype == DType::BF16) {
    const float* s = static_cast<const float*>(p.src);
    bf16* d = static_cast<bf16*>(p.dst);
    parallel_for(p.n, kGrain, [&](int64_t b, int64_t e) {
#if LB_X86_SIMD
      // the scalar loop is not vectorised (the NaN branch): 0.3-0.4x of a copy's rate
      if (cpu::has_avx512()) return cast_avx512(s, d, b, e);
#endif
      for (int64_t i = b; i < e; i++) d[i] = lb_f32_to_bf16(s[i]);
    });
    return;
  }
  if (p.src_dtype == DType::BF16 && p.dst_dtype == DType::F32) {
    const bf16* s = static_cast<const bf16*>(p.src);
    float* d = static_cast<float*>(p.dst);
    parallel_for(p.n, kGrain, [&](int64_t b, int64_t e) {
#if LB_X86_SIMD
      if (cpu::has_avx512()) return cast_avx512(s, d, b, e);
#endif
      for (int64_t i = b; i < e; i++) d[i] = lb_bf16_to_f32(s[i]);
    });
    return;
  }
  throw std::runtime_error(std::string("copy: cannot copy ") + dtype_name(p.src_dtype) + " to " + dtype_name(p.dst_dtype));
}

}  // namespace lb
