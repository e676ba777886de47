// elementwise.cpp (ref): axpby, scale, fill, copy.
#include <climits>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "ref_util.h"

namespace lb {

void axpby_forward_ref(const AxpbyParams& p) {
  // a, b, out (n); b may be null; out may alias a or b
  for (int64_t i = 0; i < p.n; i++) {
    double v = (double)p.alpha * ref::load(p.a, i, p.dtype);
    if (p.b) v += (double)p.beta * ref::load(p.b, i, p.dtype);
    ref::store(p.out, i, v, p.dtype);
  }
}

void scale_forward_ref(const ScaleParams& p) {
  for (int64_t i = 0; i < p.n; i++) ref::store(p.x, i, ref::load(p.x, i, p.dtype) * (double)p.s, p.dtype);
}

// The i32 value of a fill: truncated toward zero; values outside the i32 range are an error.
static int32_t fill_i32_value(float value) {
  const double t = std::trunc((double)value);
  if (!(t >= (double)INT_MIN && t <= (double)INT_MAX))
    throw std::out_of_range("fill: value " + std::to_string(value) + " does not fit in i32");
  return (int32_t)t;
}

void fill_forward_ref(const FillParams& p) {
  if (p.dtype == DType::I32) {
    const int32_t v = fill_i32_value(p.value);
    for (int64_t i = 0; i < p.n; i++) static_cast<int32_t*>(p.x)[i] = v;
    return;
  }
  for (int64_t i = 0; i < p.n; i++) ref::store(p.x, i, (double)p.value, p.dtype);
}

void copy_forward_ref(const CopyParams& p) {
  if (p.src_dtype == p.dst_dtype) {
    if (p.n) std::memmove(p.dst, p.src, (size_t)p.n * dtype_size(p.src_dtype));
    return;
  }
  for (int64_t i = 0; i < p.n; i++) ref::store(p.dst, i, ref::load(p.src, i, p.src_dtype), p.dst_dtype);
}

}  // namespace lb
