// napi_util.h: small helpers shared by the N-API entry points.
#pragma once
#include <napi.h>

#include <string>

#include "../kernels/ops.h"
#include "device.h"

namespace lb {

inline DType parse_dtype(Napi::Env env, const Napi::Value& v, const std::string& fn) {
  if (!v.IsString()) throw Napi::TypeError::New(env, fn + ": dtype must be 'f32', 'bf16' or 'i32'");
  const std::string s = v.As<Napi::String>().Utf8Value();
  if (s == "f32") return DType::F32;
  if (s == "bf16") return DType::BF16;
  if (s == "i32") return DType::I32;
  throw Napi::TypeError::New(env, fn + ": dtype must be 'f32', 'bf16' or 'i32', got '" + s + "'");
}

// A request for 'cuda' that this build or machine cannot serve throws an Error naming the call.
inline void require_cuda(Napi::Env env, const std::string& fn) {
  if (!cuda_compiled()) throw Napi::Error::New(env, fn + ": built without CUDA: run `npm run build:cuda`");
  if (cuda_device_count() == 0) throw Napi::Error::New(env, fn + ": " + cuda_unavailable_reason());
}

Backend parse_backend(Napi::Env env, const Napi::Value& v, const std::string& fn);
Napi::Value Run(const Napi::CallbackInfo& info);
Napi::Value Supports(const Napi::CallbackInfo& info);

}  // namespace lb
