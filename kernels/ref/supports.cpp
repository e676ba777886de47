// supports.cpp (ref): the oracle covers every op in f32 and bf16; fill and copy also move i32.
#include "../ops.h"

namespace lb {

bool supports_ref(OpId op, DType dtype) {
  if (dtype == DType::I32) return op == OpId::fill || op == OpId::copy;
  return (int)op >= 0 && (int)op < (int)OpId::count_;
}

}  // namespace lb
