// addon.cc: module exports. Tensors: alloc / view / dispose / toArray / setData; ops: run / supports
// (ops_napi.cc); info, threads and synchronize. Every entry point converts C++ exceptions into JS
// errors, so bad input never crashes the process.
#include <napi.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "../kernels/common.h"
#include "device.h"
#include "napi_util.h"
#include "tensor.h"

namespace lb {

Napi::Value OnlineSoftmaxLse(const Napi::CallbackInfo& info);  // host_math.cc
Napi::Value WgmmaAccCoords(const Napi::CallbackInfo& info);   // host_math.cc (Hopper GEMM index math)
Napi::Value Sw128(const Napi::CallbackInfo& info);
Napi::Value WgmmaDesc(const Napi::CallbackInfo& info);
Napi::Value Sm90OperandAddrs(const Napi::CallbackInfo& info);
Napi::Value Sm90Tiles(const Napi::CallbackInfo& info);
Napi::Value Sm90Reject(const Napi::CallbackInfo& info);
Napi::Value SplitKPlan(const Napi::CallbackInfo& info);
Napi::Value Philox4x32(const Napi::CallbackInfo& info);       // host_math.cc (Philox, kernels/common.h)
Napi::Value DropoutUniforms(const Napi::CallbackInfo& info);
Napi::Value CudaMatmulPath(const Napi::CallbackInfo& info);
Napi::Value WordpieceCreate(const Napi::CallbackInfo& info);  // wordpiece.cc
Napi::Value WordpieceDefine(const Napi::CallbackInfo& info);
Napi::Value WordpieceEncodeBatch(const Napi::CallbackInfo& info);
Napi::Value WordpieceEncodeBatchAsync(const Napi::CallbackInfo& info);
Napi::Value InstanceBuilderCreate(const Napi::CallbackInfo& info);  // instances.cc
Napi::Value InstanceBuilderBuild(const Napi::CallbackInfo& info);
Napi::Value InstanceBuilderClose(const Napi::CallbackInfo& info);
namespace {

constexpr int64_t kMaxElems = int64_t(1) << 40;

using Fn = Napi::Value (*)(const Napi::CallbackInfo&);

// Wraps an entry point: std::exception -> JS Error (node-addon-api only converts Napi::Error itself).
template <Fn F>
Napi::Value guarded(const Napi::CallbackInfo& info) {
  try {
    return F(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw Napi::RangeError::New(info.Env(), "out of memory");
  } catch (const std::range_error& e) {
    throw Napi::RangeError::New(info.Env(), e.what());
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
}

std::vector<int64_t> parse_shape(Napi::Env env, const Napi::Value& v, const std::string& fn) {
  if (!v.IsArray()) throw Napi::TypeError::New(env, fn + ": shape must be an array of non-negative integers");
  Napi::Array a = v.As<Napi::Array>();
  if (a.Length() > 8) throw Napi::RangeError::New(env, fn + ": shape has more than 8 dimensions");
  std::vector<int64_t> shape;
  int64_t n = 1;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value d = a.Get(i);
    if (!d.IsNumber()) throw Napi::TypeError::New(env, fn + ": shape[" + std::to_string(i) + "] is not a number");
    const double x = d.As<Napi::Number>().DoubleValue();
    if (!(x >= 0) || std::floor(x) != x || x > (double)kMaxElems)
      throw Napi::RangeError::New(env, fn + ": shape[" + std::to_string(i) + "] must be a non-negative integer");
    if (__builtin_mul_overflow(n, (int64_t)x, &n) || n > kMaxElems)
      throw Napi::RangeError::New(env, fn + ": shape has too many elements");
    shape.push_back((int64_t)x);
  }
  return shape;
}

Device parse_device(Napi::Env env, const Napi::Value& v, const std::string& fn) {
  if (!v.IsString()) throw Napi::TypeError::New(env, fn + ": device must be 'cpu' or 'cuda'");
  const std::string s = v.As<Napi::String>().Utf8Value();
  if (s == "cpu") return Device::Cpu;
  if (s == "cuda") {
    require_cuda(env, fn);
    return Device::Cuda;
  }
  throw Napi::TypeError::New(env, fn + ": device must be 'cpu' or 'cuda', got '" + s + "'");
}

Tensor& get_tensor(const Napi::CallbackInfo& info, size_t i, const std::string& fn) {
  Napi::Env env = info.Env();
  Napi::Value v = info.Length() > i ? info[i] : env.Undefined();
  if (v.IsObject() && !v.IsArray()) v = v.As<Napi::Object>().Get("id");
  if (!v.IsNumber()) throw Napi::TypeError::New(env, fn + ": expected a tensor handle or id");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 1 && d <= 4294967295.0) || std::floor(d) != d) throw Napi::TypeError::New(env, fn + ": not a valid tensor id");
  Tensor* t = registry().find((uint32_t)d);
  if (!t) throw Napi::TypeError::New(env, fn + ": tensor " + std::to_string((uint32_t)d) + " has been disposed or never existed");
  return *t;
}

// alloc(shape, dtype, device) -> id (zero-filled)
Napi::Value Alloc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3) throw Napi::TypeError::New(env, "alloc(shape, dtype, device): 3 arguments required");
  auto shape = parse_shape(env, info[0], "alloc");
  DType dt = parse_dtype(env, info[1], "alloc");
  Device dev = parse_device(env, info[2], "alloc");
  Tensor& t = registry().alloc(shape, dt, dev);
  if (dev == Device::Cuda && t.nbytes()) cuda_memset_zero(t.data(), t.nbytes());
  return Napi::Number::New(env, t.id);
}

// view(base, offsetElements, shape, dtype) -> id; offset counts elements of `dtype`
Napi::Value View(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Tensor& base = get_tensor(info, 0, "view");
  if (info.Length() < 4 || !info[1].IsNumber()) throw Napi::TypeError::New(env, "view(base, offset, shape, dtype): offset must be a number");
  const double off = info[1].As<Napi::Number>().DoubleValue();
  if (!(off >= 0) || std::floor(off) != off || off > (double)kMaxElems) throw Napi::RangeError::New(env, "view: offset must be a non-negative integer");
  auto shape = parse_shape(env, info[2], "view");
  DType dt = parse_dtype(env, info[3], "view");
  const size_t byte_off = base.offset + (size_t)off * dtype_size(dt);
  Tensor& t = registry().view(base, byte_off, shape, dt);
  return Napi::Number::New(env, t.id);
}

Napi::Value Dispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "dispose(id): expected a tensor id");
  const double d = info[0].As<Napi::Number>().DoubleValue();
  if (!(d >= 1 && d <= 4294967295.0) || std::floor(d) != d) throw Napi::TypeError::New(env, "dispose: not a valid tensor id");
  return Napi::Boolean::New(env, registry().dispose((uint32_t)d));
}

Napi::Value IsAlive(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) return Napi::Boolean::New(env, false);
  const double d = info[0].As<Napi::Number>().DoubleValue();
  if (!(d >= 1 && d <= 4294967295.0) || std::floor(d) != d) return Napi::Boolean::New(env, false);
  return Napi::Boolean::New(env, registry().find((uint32_t)d) != nullptr);
}

Napi::Value Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("live_tensors", Napi::Number::New(env, (double)registry().live()));
  o.Set("host_bytes", Napi::Number::New(env, (double)registry().host_bytes()));
  o.Set("cuda_bytes_in_use", Napi::Number::New(env, (double)cuda_bytes_in_use()));
  o.Set("cuda_bytes_reserved", Napi::Number::New(env, (double)cuda_bytes_reserved()));
  return o;
}

// toArray(id) -> Float32Array (f32, bf16 widened exactly) or Int32Array (i32). The one way data
// comes back to JS; on CUDA it waits for the stream.
Napi::Value ToArray(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Tensor& t = get_tensor(info, 0, "toArray");
  const size_t n = (size_t)t.numel;
  std::vector<char> staging;
  const void* src = t.data();
  if (t.device == Device::Cuda) {
    staging.resize(t.nbytes());
    if (!staging.empty()) cuda_memcpy_d2h(staging.data(), t.data(), staging.size());
    src = staging.data();
  }
  if (t.dtype == DType::I32) {
    auto arr = Napi::Int32Array::New(env, n);
    if (n) std::memcpy(arr.Data(), src, n * 4);
    return arr;
  }
  auto arr = Napi::Float32Array::New(env, n);
  if (t.dtype == DType::F32) {
    if (n) std::memcpy(arr.Data(), src, n * 4);
  } else {
    const uint16_t* h = static_cast<const uint16_t*>(src);
    float* o = arr.Data();
    for (size_t i = 0; i < n; i++) o[i] = lb_bf16_to_f32(h[i]);
  }
  return arr;
}

// setData(id, typedArray, offsetElements = 0): Float32Array into f32/bf16 (rounded), Int32Array into i32.
Napi::Value SetData(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Tensor& t = get_tensor(info, 0, "setData");
  if (info.Length() < 2 || !info[1].IsTypedArray()) throw Napi::TypeError::New(env, "setData(tensor, data): data must be a Float32Array or Int32Array");
  Napi::TypedArray ta = info[1].As<Napi::TypedArray>();
  double off = 0;
  if (info.Length() > 2 && !info[2].IsUndefined()) {
    if (!info[2].IsNumber()) throw Napi::TypeError::New(env, "setData: offset must be a number");
    off = info[2].As<Napi::Number>().DoubleValue();
    if (!(off >= 0) || std::floor(off) != off) throw Napi::RangeError::New(env, "setData: offset must be a non-negative integer");
  }
  const size_t n = ta.ElementLength();
  if (off > (double)t.numel || (double)n > (double)t.numel - off)
    throw Napi::RangeError::New(env, "setData: " + std::to_string(n) + " values at offset " + std::to_string((int64_t)off) +
                                         " do not fit in a tensor of " + std::to_string(t.numel) + " elements");
  const bool want_int = t.dtype == DType::I32;
  if (want_int && ta.TypedArrayType() != napi_int32_array)
    throw Napi::TypeError::New(env, "setData: an i32 tensor takes an Int32Array");
  if (!want_int && ta.TypedArrayType() != napi_float32_array)
    throw Napi::TypeError::New(env, std::string("setData: a ") + dtype_name(t.dtype) + " tensor takes a Float32Array");
  const void* src = static_cast<const char*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  std::vector<uint16_t> bf;
  size_t bytes = n * 4;
  if (t.dtype == DType::BF16) {
    bf.resize(n);
    const float* f = static_cast<const float*>(src);
    for (size_t i = 0; i < n; i++) bf[i] = lb_f32_to_bf16(f[i]);
    src = bf.data();
    bytes = n * 2;
  }
  char* dst = static_cast<char*>(t.data()) + (size_t)off * dtype_size(t.dtype);
  if (bytes == 0) return env.Undefined();
  if (t.device == Device::Cuda) {
    cuda_memcpy_h2d(dst, src, bytes);
    cuda_synchronize();  // the staging buffer dies with this call
  } else {
    std::memcpy(dst, src, bytes);
  }
  return env.Undefined();
}

class SyncWorker : public Napi::AsyncWorker {
 public:
  SyncWorker(Napi::Env env) : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    try {
      cuda_synchronize();
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
};

// synchronize() -> Promise: waits for queued device work off the JS thread.
Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!cuda_compiled() || cuda_device_count() == 0) {
    auto d = Napi::Promise::Deferred::New(env);
    d.Resolve(env.Undefined());
    return d.Promise();
  }
  auto* w = new SyncWorker(env);
  auto p = w->Promise();
  w->Queue();
  return p;
}

// cudaTimerStart() / cudaTimerStop() -> ms: device time of the work enqueued in between (benchmarks).
Napi::Value CudaTimerStart(const Napi::CallbackInfo& info) {
  cuda_timer_start();
  return info.Env().Undefined();
}
Napi::Value CudaTimerStop(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), cuda_timer_stop_ms());
}

// cudaTimerMark() -> index; cudaTimerElapsed(a, b) -> ms; cudaTimerClear(): per-op device timing (bench step --profile).
Napi::Value CudaTimerMark(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), cuda_timer_mark()); }
Napi::Value CudaTimerElapsed(const Napi::CallbackInfo& info) {
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber())
    throw Napi::TypeError::New(info.Env(), "cudaTimerElapsed(a, b): two mark indices expected");
  return Napi::Number::New(info.Env(), cuda_timer_elapsed_ms(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Int32Value()));
}
Napi::Value CudaTimerClear(const Napi::CallbackInfo& info) {
  cuda_timer_clear();
  return info.Env().Undefined();
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("build", Napi::String::New(env, cuda_compiled() ? "cuda" : "cpu"));
  o.Set("cuda_compiled", Napi::Boolean::New(env, cuda_compiled()));
  const int n = cuda_device_count();
  o.Set("cuda_devices", Napi::Number::New(env, n));
  Napi::Array names = Napi::Array::New(env);
  for (int i = 0; i < n; i++) names.Set((uint32_t)i, Napi::String::New(env, cuda_device_name(i)));
  o.Set("cuda_device_names", names);
  if (n == 0) o.Set("cuda_unavailable", Napi::String::New(env, cuda_unavailable_reason()));
  o.Set("simd", Napi::String::New(env, cpu_simd_level()));
  o.Set("threads", Napi::Number::New(env, cpu_num_threads()));
  o.Set("cpu_bf16_dot", Napi::Boolean::New(env, cpu_bf16_dot()));
  Napi::Array ops = Napi::Array::New(env);
  for (int i = 0; i < (int)OpId::count_; i++) ops.Set((uint32_t)i, Napi::String::New(env, op_name((OpId)i)));
  o.Set("ops", ops);
  return o;
}

// setCpuIsa(name): "avx512" | "avx2" | "generic" caps the cpu backend's ISA (set_cpu_isa); returns the
// simd level info() then reports. Between ops only (ops are synchronous on the JS thread).
Napi::Value SetCpuIsa(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "setCpuIsa(name): expected a string: \"avx512\", \"avx2\" or \"generic\"");
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  if (const char* why = set_cpu_isa(name.c_str())) throw Napi::RangeError::New(env, "setCpuIsa(\"" + name + "\"): " + why);
  return Napi::String::New(env, cpu_simd_level());
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "setNumThreads(n): expected a number");
  const double d = info[0].As<Napi::Number>().DoubleValue();
  if (!(d >= 1 && d <= 1024) || std::floor(d) != d) throw Napi::RangeError::New(env, "setNumThreads: n must be an integer in [1, 1024]");
  cpu_set_num_threads((int)d);
  return env.Undefined();
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("alloc", Napi::Function::New(env, guarded<Alloc>, "alloc"));
  exports.Set("view", Napi::Function::New(env, guarded<View>, "view"));
  exports.Set("dispose", Napi::Function::New(env, guarded<Dispose>, "dispose"));
  exports.Set("isAlive", Napi::Function::New(env, guarded<IsAlive>, "isAlive"));
  exports.Set("stats", Napi::Function::New(env, guarded<Stats>, "stats"));
  exports.Set("toArray", Napi::Function::New(env, guarded<ToArray>, "toArray"));
  exports.Set("setData", Napi::Function::New(env, guarded<SetData>, "setData"));
  exports.Set("synchronize", Napi::Function::New(env, guarded<Synchronize>, "synchronize"));
  exports.Set("info", Napi::Function::New(env, guarded<Info>, "info"));
  exports.Set("cudaTimerStart", Napi::Function::New(env, guarded<CudaTimerStart>, "cudaTimerStart"));
  exports.Set("cudaTimerStop", Napi::Function::New(env, guarded<CudaTimerStop>, "cudaTimerStop"));
  exports.Set("cudaTimerMark", Napi::Function::New(env, guarded<CudaTimerMark>, "cudaTimerMark"));
  exports.Set("cudaTimerElapsed", Napi::Function::New(env, guarded<CudaTimerElapsed>, "cudaTimerElapsed"));
  exports.Set("cudaTimerClear", Napi::Function::New(env, guarded<CudaTimerClear>, "cudaTimerClear"));
  exports.Set("setNumThreads", Napi::Function::New(env, guarded<SetNumThreads>, "setNumThreads"));
  exports.Set("setCpuIsa", Napi::Function::New(env, guarded<SetCpuIsa>, "setCpuIsa"));
  // LINKBERT_CPU_ISA caps the cpu backend's ISA from the start (as setCpuIsa); a bad value fails the load
  if (const char* isa = std::getenv("LINKBERT_CPU_ISA"); isa && *isa)
    if (const char* why = set_cpu_isa(isa))
      throw Napi::Error::New(env, std::string("LINKBERT_CPU_ISA=") + isa + ": " + why);
  exports.Set("run", Napi::Function::New(env, guarded<Run>, "run"));
  exports.Set("supports", Napi::Function::New(env, guarded<Supports>, "supports"));
  Napi::Object host = Napi::Object::New(env);
  host.Set("onlineSoftmaxLse", Napi::Function::New(env, guarded<OnlineSoftmaxLse>, "onlineSoftmaxLse"));
  host.Set("wgmmaAccCoords", Napi::Function::New(env, guarded<WgmmaAccCoords>, "wgmmaAccCoords"));
  host.Set("sw128", Napi::Function::New(env, guarded<Sw128>, "sw128"));
  host.Set("wgmmaDesc", Napi::Function::New(env, guarded<WgmmaDesc>, "wgmmaDesc"));
  host.Set("sm90OperandAddrs", Napi::Function::New(env, guarded<Sm90OperandAddrs>, "sm90OperandAddrs"));
  host.Set("sm90Tiles", Napi::Function::New(env, guarded<Sm90Tiles>, "sm90Tiles"));
  host.Set("sm90Reject", Napi::Function::New(env, guarded<Sm90Reject>, "sm90Reject"));
  host.Set("splitkPlan", Napi::Function::New(env, guarded<SplitKPlan>, "splitkPlan"));
  host.Set("philox4x32", Napi::Function::New(env, guarded<Philox4x32>, "philox4x32"));
  host.Set("dropoutUniforms", Napi::Function::New(env, guarded<DropoutUniforms>, "dropoutUniforms"));
  exports.Set("hostMath", host);
  exports.Set("cudaMatmulPath", Napi::Function::New(env, guarded<CudaMatmulPath>, "cudaMatmulPath"));
  exports.Set("wordpieceCreate", Napi::Function::New(env, guarded<WordpieceCreate>, "wordpieceCreate"));
  exports.Set("wordpieceDefine", Napi::Function::New(env, guarded<WordpieceDefine>, "wordpieceDefine"));
  exports.Set("wordpieceEncodeBatch", Napi::Function::New(env, guarded<WordpieceEncodeBatch>, "wordpieceEncodeBatch"));
  exports.Set("wordpieceEncodeBatchAsync", Napi::Function::New(env, guarded<WordpieceEncodeBatchAsync>, "wordpieceEncodeBatchAsync"));
  exports.Set("instanceBuilderCreate", Napi::Function::New(env, guarded<InstanceBuilderCreate>, "instanceBuilderCreate"));
  exports.Set("instanceBuilderBuild", Napi::Function::New(env, guarded<InstanceBuilderBuild>, "instanceBuilderBuild"));
  exports.Set("instanceBuilderClose", Napi::Function::New(env, guarded<InstanceBuilderClose>, "instanceBuilderClose"));
  return exports;
}

}  // namespace lb

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return lb::Init(env, exports); }
NODE_API_MODULE(linkbert, InitModule)
