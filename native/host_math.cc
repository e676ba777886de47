// host_math.cc: exposes the __host__ __device__ helpers that only the CUDA kernels use, so the CPU test
// suite checks their math on every build (test/host-math.test.ts). The helpers every backend shares
// (bf16, GELU, lb_uniform's dropout) are covered by the op table through the ref and cpu kernels; the
// Philox block and pair forms only CUDA uses, and Philox itself against known answers, are here.
// Also: cudaMatmulPath(), which GEMM path the last cuda matmul took (the kernel benchmark reports it).
#include <napi.h>

#include <cmath>
#include <string>
#include <vector>

#include "../kernels/common.h"
#include "../kernels/cuda/gemm_sm90.h"
#include "../kernels/cuda/online_softmax.h"
#include "napi_util.h"

namespace lb {

// onlineSoftmaxLse(x: Float32Array, chunk: number) -> number: logsumexp of x computed the way the CUDA
// kernels do: chunks of `chunk` values pushed one by one, then the chunk states combined in a tree.
Napi::Value OnlineSoftmaxLse(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array ||
      !info[1].IsNumber())
    throw Napi::TypeError::New(env, "onlineSoftmaxLse(x: Float32Array, chunk: number)");
  Napi::Float32Array x = info[0].As<Napi::Float32Array>();
  const double cd = info[1].As<Napi::Number>().DoubleValue();
  if (!(cd >= 1 && cd <= 1e9) || std::floor(cd) != cd) throw Napi::RangeError::New(env, "onlineSoftmaxLse: chunk must be a positive integer");
  const size_t chunk = (size_t)cd, n = x.ElementLength();
  std::vector<LbSoftmaxState> states;
  for (size_t b = 0; b < n || (n == 0 && states.empty()); b += chunk) {
    LbSoftmaxState s = lb_softmax_init();
    for (size_t i = b; i < n && i < b + chunk; i++) s = lb_softmax_push(s, x[i]);
    states.push_back(s);
    if (n == 0) break;
  }
  while (states.size() > 1) {  // pairwise, like a warp / block reduction
    std::vector<LbSoftmaxState> next;
    for (size_t i = 0; i < states.size(); i += 2)
      next.push_back(i + 1 < states.size() ? lb_softmax_combine(states[i], states[i + 1]) : states[i]);
    states.swap(next);
  }
  return Napi::Number::New(env, lb_softmax_lse(states[0]));
}

// ---- the Hopper GEMM's index math (kernels/cuda/gemm_sm90.h)

namespace {
int int_arg(const Napi::CallbackInfo& info, size_t i, const char* fn, double lo, double hi) {
  if (info.Length() <= i || !info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(fn) + ": expected a number");
  const double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= lo && d <= hi) || std::floor(d) != d)
    throw Napi::RangeError::New(info.Env(), std::string(fn) + ": argument " + std::to_string(i) + " out of range");
  return (int)d;
}
}  // namespace

// wgmmaAccCoords(n: 128 | 256 | 8*j) -> Int32Array of 128 * n/2 (row, col) pairs: thread t, register r
// at index 2 * (t * n/2 + r).
Napi::Value WgmmaAccCoords(const Napi::CallbackInfo& info) {
  const int n = int_arg(info, 0, "wgmmaAccCoords", 8, 256);
  if (n % 8) throw Napi::RangeError::New(info.Env(), "wgmmaAccCoords: n must be a multiple of 8");
  Napi::Int32Array out = Napi::Int32Array::New(info.Env(), (size_t)128 * n);
  for (int t = 0; t < 128; t++)
    for (int r = 0; r < n / 2; r++) {
      int row, col;
      lb_wgmma_acc_coord(t, r, &row, &col);
      out[2 * ((size_t)t * (n / 2) + r)] = row;
      out[2 * ((size_t)t * (n / 2) + r) + 1] = col;
    }
  return out;
}

// sw128(offsets: Int32Array) -> Int32Array: the 128-byte swizzle of each byte offset.
Napi::Value Sw128(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw Napi::TypeError::New(info.Env(), "sw128(offsets: Int32Array)");
  Napi::Int32Array in = info[0].As<Napi::Int32Array>();
  Napi::Int32Array out = Napi::Int32Array::New(info.Env(), in.ElementLength());
  for (size_t i = 0; i < in.ElementLength(); i++) out[i] = (int32_t)lb_sw128((uint32_t)in[i]);
  return out;
}

// wgmmaDesc(start, lbo, sbo, swizzle) -> { bits: bigint, start, lbo, sbo, baseOffset, swizzle } (decoded back).
Napi::Value WgmmaDesc(const Napi::CallbackInfo& info) {
  const uint32_t start = (uint32_t)int_arg(info, 0, "wgmmaDesc", 0, 4294967295.0);
  const uint32_t lbo = (uint32_t)int_arg(info, 1, "wgmmaDesc", 0, 4294967295.0);
  const uint32_t sbo = (uint32_t)int_arg(info, 2, "wgmmaDesc", 0, 4294967295.0);
  const uint32_t sw = (uint32_t)int_arg(info, 3, "wgmmaDesc", 0, 3);
  const uint64_t d = lb_wgmma_desc_encode(start, lbo, sbo, sw);
  const LbWgmmaDesc f = lb_wgmma_desc_decode(d);
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("bits", Napi::BigInt::New(info.Env(), d));
  o.Set("start", f.start);
  o.Set("lbo", f.lbo);
  o.Set("sbo", f.sbo);
  o.Set("baseOffset", f.base_offset);
  o.Set("swizzle", f.swizzle);
  return o;
}

// sm90OperandAddrs(mnMajor: boolean, rows: number, row0: number, tile: number) -> { tma, wgmma }: for
// every k16 step ks (0..3) of a k-block, element i (0..rows-1) and k (0..15), at index (ks*rows + i)*16 + k:
// where TMA stored element (row0 + i, 16 ks + k) of the operand tile at shared address `tile`, and where
// the descriptor the kernel builds (lb_sm90_desc) makes the tensor core read it (lb_wgmma_model_addr).
Napi::Value Sm90OperandAddrs(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsBoolean()) throw Napi::TypeError::New(info.Env(), "sm90OperandAddrs(mnMajor: boolean, rows, row0, tile)");
  const bool mn = info[0].As<Napi::Boolean>().Value();
  const int rows = int_arg(info, 1, "sm90OperandAddrs", 8, 256);
  const int row0 = int_arg(info, 2, "sm90OperandAddrs", 0, 192);
  const uint32_t tile = (uint32_t)int_arg(info, 3, "sm90OperandAddrs", 0, 262143);
  const size_t n = (size_t)4 * rows * 16;
  Napi::Int32Array tma = Napi::Int32Array::New(info.Env(), n), wg = Napi::Int32Array::New(info.Env(), n);
  for (int ks = 0; ks < 4; ks++) {
    const uint64_t d = lb_sm90_desc(tile, row0, ks, mn);
    for (int i = 0; i < rows; i++)
      for (int k = 0; k < 16; k++) {
        const size_t at = ((size_t)ks * rows + i) * 16 + k;
        const int kk = 16 * ks + k;
        tma[at] = (int32_t)(tile + (mn ? lb_sm90_mnmajor_off(row0 + i, kk) : lb_sm90_kmajor_off(row0 + i, kk)));
        wg[at] = (int32_t)lb_wgmma_model_addr(d, mn, i, k);
      }
  }
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("tma", tma);
  o.Set("wgmma", wg);
  return o;
}

// sm90Tiles(nm, nn, group) -> Int32Array of (bm, bn) per tile index.
Napi::Value Sm90Tiles(const Napi::CallbackInfo& info) {
  const int nm = int_arg(info, 0, "sm90Tiles", 1, 4096), nn = int_arg(info, 1, "sm90Tiles", 1, 4096);
  const int group = int_arg(info, 2, "sm90Tiles", 1, 4096);
  Napi::Int32Array out = Napi::Int32Array::New(info.Env(), (size_t)2 * nm * nn);
  for (int t = 0; t < nm * nn; t++) {
    int bm, bn;
    lb_sm90_tile(t, nm, nn, group, &bm, &bn);
    out[2 * (size_t)t] = bm;
    out[2 * (size_t)t + 1] = bn;
  }
  return out;
}

namespace {
// A GEMM shape given as {M, N, K, batch, transA, transB, lda, ldb, ...}: absent fields take the packed
// defaults; num() reads any other numeric field
struct GemmShapeArg {
  Napi::Object o;
  int M, N, K, batch;
  bool ta, tb;
  int64_t lda, ldb;
  double num(const char* k, double dflt) const {
    Napi::Value v = o.Get(k);
    return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : dflt;
  }
};
GemmShapeArg gemm_shape_arg(const Napi::CallbackInfo& info, const char* fn) {
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(info.Env(), std::string(fn) + "(shape: object)");
  GemmShapeArg g{info[0].As<Napi::Object>(), 0, 0, 0, 1, false, false, 0, 0};
  auto flag = [&](const char* k) { Napi::Value v = g.o.Get(k); return v.IsBoolean() && v.As<Napi::Boolean>().Value(); };
  g.M = (int)g.num("M", 0); g.N = (int)g.num("N", 0); g.K = (int)g.num("K", 0); g.batch = (int)g.num("batch", 1);
  g.ta = flag("transA"); g.tb = flag("transB");
  g.lda = (int64_t)g.num("lda", g.ta ? g.M : g.K);
  g.ldb = (int64_t)g.num("ldb", g.tb ? g.K : g.N);
  return g;
}
}  // namespace

// sm90Reject({M, N, K, batch, transA, transB, lda, ldb, strideA, strideB, alignA, alignB}) -> reason
// code of lb_sm90_reject (0: the Hopper path takes the shape); alignX: the base address modulo 16.
Napi::Value Sm90Reject(const Napi::CallbackInfo& info) {
  const GemmShapeArg g = gemm_shape_arg(info, "sm90Reject");
  const int64_t sa = (int64_t)g.num("strideA", (double)g.lda * (g.ta ? g.K : g.M));
  const int64_t sb = (int64_t)g.num("strideB", (double)g.ldb * (g.tb ? g.N : g.K));
  const uint64_t aa = 4096 + (uint64_t)g.num("alignA", 0), ab = 8192 + (uint64_t)g.num("alignB", 0);
  return Napi::Number::New(info.Env(), lb_sm90_reject(g.M, g.N, g.K, g.batch, g.ta, g.tb, g.lda, g.ldb, sa, sb, aa, ab));
}

// splitkPlan({M, N, K, batch, transA, transB, lda, ldb, sms}) -> {slices, kc, strideA, strideB} (lb_splitk_plan)
Napi::Value SplitKPlan(const Napi::CallbackInfo& info) {
  const GemmShapeArg g = gemm_shape_arg(info, "splitkPlan");
  const LbSplitK s = lb_splitk_plan(g.M, g.N, g.K, g.batch, g.ta, g.tb, g.lda, g.ldb, (int)g.num("sms", 132));
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("slices", s.slices);
  out.Set("kc", s.kc);
  out.Set("strideA", (double)s.stride_a);
  out.Set("strideB", (double)s.stride_b);
  return out;
}

// ---- Philox (kernels/common.h): the per-block and per-pair forms the CUDA dropout and attention kernels use

namespace {
Napi::Uint32Array u32_array(const Napi::CallbackInfo& info, size_t i, size_t len, const char* fn) {
  if (info.Length() <= i || !info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array)
    throw Napi::TypeError::New(info.Env(), std::string(fn) + ": argument " + std::to_string(i) + " must be a Uint32Array");
  Napi::Uint32Array a = info[i].As<Napi::Uint32Array>();
  if (a.ElementLength() != len)
    throw Napi::RangeError::New(info.Env(), std::string(fn) + ": argument " + std::to_string(i) + " must have " + std::to_string(len) + " elements");
  return a;
}
uint64_t u64_arg(const Napi::CallbackInfo& info, size_t i, const char* fn) {
  if (info.Length() <= i || !info[i].IsBigInt())
    throw Napi::TypeError::New(info.Env(), std::string(fn) + ": argument " + std::to_string(i) + " must be a BigInt");
  bool lossless = true;
  const uint64_t u = info[i].As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless) throw Napi::RangeError::New(info.Env(), std::string(fn) + ": argument " + std::to_string(i) + " does not fit in 64 bits");
  return u;
}
}  // namespace

// philox4x32(ctr: Uint32Array(4), key: Uint32Array(2)) -> Uint32Array(4): lb_philox4x32_10.
Napi::Value Philox4x32(const Napi::CallbackInfo& info) {
  Napi::Uint32Array c = u32_array(info, 0, 4, "philox4x32"), k = u32_array(info, 1, 2, "philox4x32");
  uint32_t w[4] = {c[0], c[1], c[2], c[3]};
  lb_philox4x32_10(w, k[0], k[1]);
  Napi::Uint32Array out = Napi::Uint32Array::New(info.Env(), 4);
  for (int i = 0; i < 4; i++) out[i] = w[i];
  return out;
}

// dropoutUniforms(seed: bigint, block: bigint) -> { perCounter, perBlock, perPair }: the uniforms of
// counters 4 block .. 4 block + 3 from lb_uniform (one counter at a time), lb_uniform4 and lb_uniform2.
Napi::Value DropoutUniforms(const Napi::CallbackInfo& info) {
  const uint64_t seed = u64_arg(info, 0, "dropoutUniforms"), block = u64_arg(info, 1, "dropoutUniforms");
  if (block >> 62) throw Napi::RangeError::New(info.Env(), "dropoutUniforms: block must be below 2^62");
  Napi::Env env = info.Env();
  Napi::Float32Array one = Napi::Float32Array::New(env, 4), four = Napi::Float32Array::New(env, 4), two = Napi::Float32Array::New(env, 4);
  float u4[4], u2[2];
  lb_uniform4(seed, block, u4);
  for (int k = 0; k < 4; k++) {
    one[k] = lb_uniform(seed, 4 * block + k);
    four[k] = u4[k];
  }
  for (int k = 0; k < 4; k += 2) {
    lb_uniform2(seed, 4 * block + k, u2);
    two[k] = u2[0];
    two[k + 1] = u2[1];
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("perCounter", one);
  o.Set("perBlock", four);
  o.Set("perPair", two);
  return o;
}

#if !defined(LINKBERT_CUDA)
const char* cuda_matmul_last_path() { return "none"; }  // CPU build: no cuda matmul ever runs
#else
const char* cuda_matmul_last_path();  // kernels/cuda/matmul.cu
#endif

// cudaMatmulPath() -> "wgmma" | "mma" | "simt" | "none": the path of the last cuda matmul.
Napi::Value CudaMatmulPath(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), cuda_matmul_last_path()); }

}  // namespace lb
