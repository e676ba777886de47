// matmul_sm90.h: the host side of the Hopper GEMM path (matmul_sm90.cu) as matmul.cu dispatches to it.
#pragma once
#include "../ops.h"
#include "matmul_epilogue.cuh"

namespace lb {

// LINKBERT_CUDA_GEMM, read once: auto (wgmma where available and supported, else mma.sync), mma (never
// wgmma), wgmma (wgmma for every shape it supports; an error on a device without the sm_90a image).
enum class GemmMode { Auto, Mma, Wgmma };
GemmMode cuda_gemm_mode();

// True when the current device is compute capability 9.0 and the sm_90a image of matmul_sm90.cu is the
// one the driver loaded (a probe kernel reports __CUDA_ARCH_FEAT_SM90_ALL; asked once per device).
bool cuda_sm90a_loaded();

// Enqueues C = epilogue(op(A) @ op(B)) on the wgmma/TMA path; false (nothing enqueued) when the shape,
// strides or alignment are outside what it supports or the tensor maps cannot be encoded, so the caller
// falls back to mma.sync. Call only when cuda_sm90a_loaded(). bf16 A/B, f32 or bf16 C.
bool matmul_sm90_launch(const MatmulParams& p, const matmul_epi::Epi& e);

// The path of the last matmul_forward_cuda call: "wgmma", "mma", "simt" or "none" (host_math.cc).
const char* cuda_matmul_last_path();

}  // namespace lb
