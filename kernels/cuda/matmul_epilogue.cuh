// matmul_epilogue.cuh: the matmul epilogue shared by every GEMM path (matmul.cu: SIMT and mma.sync;
// matmul_sm90.cu: wgmma): v = alpha*acc (+ beta*C, C read only when beta != 0) (+ bias[n]);
// BiasGelu stores v into pre_gelu (if non-null) and gelu_erf(v) into C.
#pragma once
#include "common.cuh"
#include "mma.cuh"

namespace lb {
namespace matmul_epi {

struct Epi {
  float alpha, beta;
  const float* bias;
  Epilogue kind;
  bool pairs;  // C/pre_gelu allow 2-element vector stores at even n (ldc, batch stride even; aligned base)
};

template <typename TC>
__device__ __forceinline__ void epilogue_store(TC* c, TC* pre, size_t off, int n, float acc, const Epi& e) {
  float v = e.alpha * acc;
  if (e.beta != 0.0f) v += e.beta * lb_ld(c + off);
  if (e.kind != Epilogue::None) v += e.bias[n];
  if (e.kind == Epilogue::BiasGelu) {
    if (pre) lb_st(pre + off, v);
    v = lb_gelu(v);
  }
  lb_st(c + off, v);
}

__device__ __forceinline__ float epilogue_value(float acc, float c_old, int n, const Epi& e, float* pre_v) {
  float v = e.alpha * acc;
  if (e.beta != 0.0f) v += e.beta * c_old;
  if (e.kind != Epilogue::None) v += e.bias[n];
  *pre_v = v;
  return e.kind == Epilogue::BiasGelu ? lb_gelu(v) : v;
}
__device__ __forceinline__ void store_pair(float* p, float a, float b) { *reinterpret_cast<float2*>(p) = make_float2(a, b); }
__device__ __forceinline__ void store_pair(bf16_t* p, float a, float b) { *reinterpret_cast<uint32_t*>(p) = lb_pack_bf16x2(a, b); }

// Columns n and n+1 (n even, n+1 < N) of one row in a single vector store per output.
template <typename TC>
__device__ __forceinline__ void epilogue_store_pair(TC* c, TC* pre, size_t off, int n, float acc0, float acc1,
                                                    const Epi& e) {
  float p0, p1;
  const float v0 = epilogue_value(acc0, e.beta != 0.0f ? lb_ld(c + off) : 0.0f, n, e, &p0);
  const float v1 = epilogue_value(acc1, e.beta != 0.0f ? lb_ld(c + off + 1) : 0.0f, n + 1, e, &p1);
  if (e.kind == Epilogue::BiasGelu && pre) store_pair(pre + off, p0, p1);
  store_pair(c + off, v0, v1);
}

}  // namespace matmul_epi
}  // namespace lb
