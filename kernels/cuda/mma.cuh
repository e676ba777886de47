// mma.cuh: thin wrappers over the sm_80+ PTX used by the tensor-core kernels (matmul.cu, attention.cu):
// cp.async (16-byte, zero-filling the bytes past src_bytes), ldmatrix (plain and .trans), and
// mma.sync.m16n8k16 bf16 x bf16 -> f32. Fragment layouts (PTX ISA, "mma.m16n8k16"), g = lane/4, t = lane%4:
//   A (16x16, row-major): a0 (g, 2t..2t+1) a1 (g+8, 2t..) a2 (g, 2t+8..) a3 (g+8, 2t+8..)
//   B (16x8, "col"):      b0 (k 2t..2t+1, n g) b1 (k 2t+8.., n g)
//   C (16x8, f32):        c0,c1 (g, 2t..2t+1) c2,c3 (g+8, 2t..2t+1)
// Built only for sm_80 and newer; an older target traps instead of mis-computing (the host never
// launches these kernels below compute capability 8.0).
#pragma once
#include <cstdint>

namespace lb {

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#define LB_SM80_ONLY(...) __trap()
#else
#define LB_SM80_ONLY(...) __VA_ARGS__
#endif

__device__ __forceinline__ uint32_t lb_smem_addr(const void* p) { return (uint32_t)__cvta_generic_to_shared(p); }

// 16 bytes global -> shared; bytes past src_bytes (0..16) are zero-filled (edge tiles).
__device__ __forceinline__ void lb_cp_async16(uint32_t dst, const void* src, int src_bytes) {
  LB_SM80_ONLY(asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes)));
}
__device__ __forceinline__ void lb_cp_async_commit() { LB_SM80_ONLY(asm volatile("cp.async.commit_group;\n" ::)); }
template <int N>
__device__ __forceinline__ void lb_cp_async_wait() { LB_SM80_ONLY(asm volatile("cp.async.wait_group %0;\n" ::"n"(N))); }

__device__ __forceinline__ void lb_ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
  LB_SM80_ONLY(asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                            : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                            : "r"(addr)));
}
__device__ __forceinline__ void lb_ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
  LB_SM80_ONLY(asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                            : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                            : "r"(addr)));
}

// d += a * b, m16n8k16, bf16 inputs, f32 accumulators.
__device__ __forceinline__ void lb_mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  LB_SM80_ONLY(asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1)));
}

// Two floats -> packed bf16x2 (low half = first), rounding as kernels/common.h does.
__device__ __forceinline__ uint32_t lb_pack_bf16x2(float lo, float hi) {
  return (uint32_t)lb_f32_to_bf16(lo) | ((uint32_t)lb_f32_to_bf16(hi) << 16);
}

}  // namespace lb
