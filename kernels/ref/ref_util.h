// ref_util.h: element access for the reference kernels. Every value is widened to double (bf16 and f32
// exactly), accumulated in double and rounded once on store: f64 -> f32 -> bf16 (nearest even).
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

#include "../common.h"
#include "../ops.h"

namespace lb {
namespace ref {

inline double load(const void* p, int64_t i, DType t) {
  return t == DType::BF16 ? (double)lb_bf16_to_f32(static_cast<const uint16_t*>(p)[i])
                          : (double)static_cast<const float*>(p)[i];
}
inline void store(void* p, int64_t i, double v, DType t) {
  const float f = (float)v;
  if (t == DType::BF16) static_cast<uint16_t*>(p)[i] = lb_f32_to_bf16(f);
  else static_cast<float*>(p)[i] = f;
}

// Index checks the N-API layer cannot do (they depend on data): thrown as std::out_of_range, which the
// op boundary reports as a RangeError.
[[noreturn]] inline void index_error(const char* op, const char* what, int64_t pos, int64_t value, int64_t hi) {
  throw std::out_of_range(std::string(op) + ": " + what + "[" + std::to_string(pos) + "] = " + std::to_string(value) +
                          " is outside [0, " + std::to_string(hi) + ")");
}

}  // namespace ref
}  // namespace lb
