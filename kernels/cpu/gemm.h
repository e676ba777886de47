// gemm.h: the blocked f32 GEMM behind matmul_forward_cpu (GotoBLAS/BLIS structure).
//
//   for each batch item, for jc in N step NC, for pc in K step KC:
//     pack B[pc:pc+kc, jc:jc+nc] -> NR-wide panels (shared, packed in parallel)
//     parallel over (MC row block x column group) tasks:
//       pack A[ic:ic+mc, pc:pc+kc] -> MR-tall panels (per thread, reused while ic stays the same)
//       micro-kernel over every MR x NR tile; write-back applies alpha and beta (beta on the first
//       K block only, later blocks accumulate); after the last K block the tile, still in L1, gets the
//       bias / GELU epilogue.
// Transposes live entirely in the packing routines. Packing buffers are thread_local and only grow.
// Long K next to a small output (weight gradients, K = tokens) is split in two halves run as separate
// tasks; the second half's sum goes through scratch and is added to C tile by tile, in a fixed order.
#pragma once
#include "../ops.h"

namespace lb {
namespace gemm {

// Runs C = alpha op(A) op(B) + beta C (+ epilogue) for f32 operands, as MatmulParams describes.
void sgemm(const MatmulParams& p);
// The same for bf16 A and B (C f32 or bf16): vdpbf16ps where the CPU has AVX512-BF16, else widened to f32.
void sgemm_bf16(const MatmulParams& p);
// Name of the micro-kernel in use: "avx512 14x32", "avx2 6x16" or "generic 4x16".
const char* kernel_name();
// Forces a kernel ("avx512", "avx2", "generic") for tests and benchmarks; false if unavailable here.
bool force_kernel(const char* name);

}  // namespace gemm
}  // namespace lb
