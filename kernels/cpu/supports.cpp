// supports.cpp (cpu): f32 and bf16 for every op (bf16: storage, f32 math; matmul: vdpbf16ps where the
// CPU has AVX512-BF16, kernels/cpu/matmul.cpp); fill and copy also move i32.
#include "../ops.h"

namespace lb {

bool supports_cpu(OpId op, DType dtype) {
  if ((int)op < 0 || (int)op >= (int)OpId::count_) return false;
  switch (dtype) {
    case DType::F32: return true;
    case DType::BF16: return true;
    case DType::I32: return op == OpId::fill || op == OpId::copy;
  }
  return false;
}

}  // namespace lb
