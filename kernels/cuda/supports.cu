// supports.cu: which (op, dtype) pairs the CUDA backend implements. Every floating op takes f32 and
// bf16 (matmul: the A/B dtype); adamw and grad_norm are f32-only by definition (master weights, grads);
// fill and copy also move i32.
#include "common.cuh"

namespace lb {

bool supports_cuda(OpId op, DType dtype) {
  switch (op) {
    case OpId::adamw:
    case OpId::grad_norm:
      return dtype == DType::F32;
    case OpId::fill:
    case OpId::copy:
      return true;
    default:
      return dtype == DType::F32 || dtype == DType::BF16;
  }
}

}  // namespace lb
