// host_math.cc: exposes the __host__ __device__ helpers that only the CUDA kernels use, so the CPU test
// suite checks their math on every build (test/host-math.test.ts). The helpers every backend shares
// (bf16, GELU, Philox dropout) are covered by the op table through the ref and cpu kernels.
#include <napi.h>

#include <cmath>
#include <vector>

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

}  // namespace lb
