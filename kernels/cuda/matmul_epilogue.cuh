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

// Columns n and n+1 (n even, n+1 < N) of one row in a single vector store per output (general form: any
// epilogue; epilogue_tile below runs the common ones through shorter code).
template <typename TC>
__device__ __forceinline__ void epilogue_store_pair(TC* c, TC* pre, size_t off, int n, float acc0, float acc1,
                                                    const Epi& e) {
  float p0, p1;
  const float v0 = epilogue_value(acc0, e.beta != 0.0f ? lb_ld(c + off) : 0.0f, n, e, &p0);
  const float v1 = epilogue_value(acc1, e.beta != 0.0f ? lb_ld(c + off + 1) : 0.0f, n + 1, e, &p1);
  if (e.kind == Epilogue::BiasGelu && pre) store_pair(pre + off, p0, p1);
  store_pair(c + off, v0, v1);
}

// Two floats to packed bf16 with the hardware's round-to-nearest-even (the same bits as lb_f32_to_bf16 for
// every non-NaN; a NaN comes out as the canonical 0x7fff). One instruction instead of ~10 per value.
__device__ __forceinline__ uint32_t pack_bf16x2_rn(float lo, float hi) {
  uint32_t r;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}
__device__ __forceinline__ void store_pair_rn(float* p, float a, float b) { *reinterpret_cast<float2*>(p) = make_float2(a, b); }
__device__ __forceinline__ void store_pair_rn(bf16_t* p, float a, float b) { *reinterpret_cast<uint32_t*>(p) = pack_bf16x2_rn(a, b); }
__device__ __forceinline__ float2 load_pair(const float* p) { return *reinterpret_cast<const float2*>(p); }
__device__ __forceinline__ float2 load_pair(const bf16_t* p) {
  const uint32_t u = *reinterpret_cast<const uint32_t*>(p);
  return make_float2(lb_bits_f32(u << 16), lb_bits_f32(u & 0xffff0000u));
}

// The epilogue of one thread's share of an output tile: NP accumulator pairs, pair i being acc[2i], acc[2i+1]
// at columns n, n+1 of row m (coord(i, &m, &n); n even). Every GEMM kernel ends here.
// Why variants behind uniform branches: a small GEMM runs each kernel's code about once per block, so its time
// goes to fetching instructions (ncu: 4096x256x256 spent ~64% of its stalls waiting on instruction fetch, and
// its blocks ran ~45k cycles for 8 k-tiles). An unrolled epilogue that carried the GELU, beta, bias, the scalar
// fallback and the software bf16 rounding for every element made each kernel 100-170 KB, most of it never
// executed. Each variant here is unrolled on its own and only the one taken is fetched: vector stores
// (even N, aligned C) with or without beta*C and bias, and the general form (GELU, or scalar stores).
template <bool kBeta, bool kBias, int NP, typename TC, typename Coord>
__device__ __forceinline__ void epilogue_pairs(TC* c, int M, int N, int64_t ldc, const float* acc, Coord coord,
                                               const Epi& e) {
#pragma unroll
  for (int i = 0; i < NP; i++) {
    int m, n;
    coord(i, &m, &n);
    if (m >= M || n >= N) continue;  // N even, n even: n + 1 < N
    TC* q = c + (size_t)m * ldc + n;
    float v0 = e.alpha * acc[2 * i], v1 = e.alpha * acc[2 * i + 1];
    if (kBeta) {
      const float2 old = load_pair(q);
      v0 += e.beta * old.x;
      v1 += e.beta * old.y;
    }
    if (kBias) { v0 += e.bias[n]; v1 += e.bias[n + 1]; }
    store_pair_rn(q, v0, v1);
  }
}

template <int NP, typename TC, typename Coord>
__device__ __forceinline__ void epilogue_tile(TC* c, TC* pre, int M, int N, int64_t ldc, const float* acc, Coord coord,
                                              const Epi& e) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 900
  // sm_80 keeps the general form alone: with the variants its f32-output mma kernel spilled 44 bytes
  if (e.kind != Epilogue::BiasGelu && e.pairs && (N & 1) == 0) {
    const bool beta = e.beta != 0.0f, bias = e.kind == Epilogue::Bias;
    if (!beta && !bias) epilogue_pairs<false, false, NP>(c, M, N, ldc, acc, coord, e);
    else if (!beta) epilogue_pairs<false, true, NP>(c, M, N, ldc, acc, coord, e);
    else if (!bias) epilogue_pairs<true, false, NP>(c, M, N, ldc, acc, coord, e);
    else epilogue_pairs<true, true, NP>(c, M, N, ldc, acc, coord, e);
    return;
  }
#endif
#pragma unroll
  for (int i = 0; i < NP; i++) {
    int m, n;
    coord(i, &m, &n);
    if (m >= M || n >= N) continue;
    const size_t off = (size_t)m * ldc + n;
    if (e.pairs && n + 1 < N) {
      epilogue_store_pair(c, pre, off, n, acc[2 * i], acc[2 * i + 1], e);
    } else {
      epilogue_store(c, pre, off, n, acc[2 * i], e);
      if (n + 1 < N) epilogue_store(c, pre, off + 1, n + 1, acc[2 * i + 1], e);
    }
  }
}

}  // namespace matmul_epi
}  // namespace lb
