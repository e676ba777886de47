// ops_napi.cc: the op boundary. run(op, pass, backend, args) validates every argument (tensor ids,
// dtypes, devices, dims and the extent each kernel will touch), fills the op's params struct and
// dispatches it unchanged to ref / cpu / cuda. Bad JS input throws TypeError or RangeError naming the
// op and the argument; nothing reaches a kernel unvalidated.
#include <napi.h>

#include <climits>
#include <cmath>
#include <stdexcept>
#include <string>

#include "device.h"
#include "napi_util.h"
#include "tensor.h"

namespace lb {
namespace {

constexpr int64_t kMaxElems = int64_t(1) << 40;

struct Call {
  Napi::Env env;
  std::string fn;  // "<op>_<pass>"
  Napi::Object args;
  Backend backend;
  Device device;

  [[noreturn]] void type_error(const std::string& arg, const std::string& msg) const {
    throw Napi::TypeError::New(env, fn + ": argument '" + arg + "': " + msg);
  }
  [[noreturn]] void range_error(const std::string& arg, const std::string& msg) const {
    throw Napi::RangeError::New(env, fn + ": argument '" + arg + "': " + msg);
  }

  // One property read per argument (Has then Get was three: a layernorm backward's 10 arguments cost
  // 2.8 us per call, a copy's 2 cost 0.9). Absent, undefined and null all mean "not given".
  static bool given(const Napi::Value& v) { return !v.IsUndefined() && !v.IsNull(); }

  Tensor* tensor(const char* name, bool required = true) const {
    Napi::Value v = args.Get(name);
    if (!given(v)) {
      if (required) type_error(name, "a tensor is required");
      return nullptr;
    }
    if (v.IsObject() && !v.IsArray()) v = v.As<Napi::Object>().Get("id");
    if (!v.IsNumber()) type_error(name, "expected a tensor handle or tensor id");
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= 1 && d <= 4294967295.0) || std::floor(d) != d) type_error(name, "not a valid tensor id");
    Tensor* t = registry().find((uint32_t)d);
    if (!t) type_error(name, "tensor " + std::to_string((uint32_t)d) + " has been disposed or never existed");
    if (t->device != device)
      type_error(name, std::string("tensor is on ") + device_name(t->device) + " but the " + backend_name(backend) +
                           " backend needs " + device_name(device));
    return t;
  }

  int64_t integer(const char* name, int64_t lo, int64_t hi, bool required = true, int64_t dflt = 0) const {
    Napi::Value v = args.Get(name);
    if (!given(v)) {
      if (required) type_error(name, "an integer is required");
      return dflt;
    }
    if (!v.IsNumber()) type_error(name, "expected an integer");
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d) || std::floor(d) != d) type_error(name, "expected an integer");
    if (d < (double)lo || d > (double)hi)
      range_error(name, std::to_string((long long)d) + " is outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return (int64_t)d;
  }

  float number(const char* name, double dflt, bool required = false) const {
    Napi::Value v = args.Get(name);
    if (!given(v)) {
      if (required) type_error(name, "a number is required");
      return (float)dflt;
    }
    if (!v.IsNumber()) type_error(name, "expected a number");
    const double d = v.As<Napi::Number>().DoubleValue();
    if (std::isnan(d)) range_error(name, "is NaN");
    return (float)d;
  }

  bool boolean(const char* name, bool dflt) const {
    Napi::Value v = args.Get(name);
    if (!given(v)) return dflt;
    if (!v.IsBoolean()) type_error(name, "expected a boolean");
    return v.As<Napi::Boolean>().Value();
  }

  uint64_t u64(const char* name, uint64_t dflt) const {
    Napi::Value v = args.Get(name);
    if (!given(v)) return dflt;
    if (v.IsBigInt()) {
      bool lossless = true;
      const uint64_t u = v.As<Napi::BigInt>().Uint64Value(&lossless);
      if (!lossless) range_error(name, "does not fit in 64 bits");
      return u;
    }
    if (!v.IsNumber()) type_error(name, "expected a non-negative integer or BigInt");
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= 0 && d <= 9007199254740991.0) || std::floor(d) != d) range_error(name, "expected a non-negative safe integer");
    return (uint64_t)d;
  }

  // The tensor must have this dtype and at least `need` elements (the extent the kernel touches).
  void check(const Tensor* t, const char* name, int64_t need, DType dtype) const {
    if (!t) return;
    if (t->dtype != dtype)
      type_error(name, std::string("expected dtype ") + dtype_name(dtype) + ", got " + dtype_name(t->dtype));
    if (need < 0 || need > kMaxElems) range_error(name, "size overflows");
    if (t->numel < need)
      range_error(name, "needs at least " + std::to_string(need) + " elements, tensor has " + std::to_string(t->numel));
  }
  void same_dtype(const Tensor* t, const char* name, DType dtype) const {
    if (t && t->dtype != dtype)
      type_error(name, std::string("expected dtype ") + dtype_name(dtype) + ", got " + dtype_name(t->dtype));
  }
  void floating(const Tensor* t, const char* name) const {
    if (t && t->dtype == DType::I32) type_error(name, "expected a floating-point tensor (f32 or bf16), got i32");
  }
  int64_t mul(const char* name, std::initializer_list<int64_t> xs) const {
    int64_t r = 1;
    for (int64_t x : xs) {
      if (x < 0 || __builtin_mul_overflow(r, x, &r) || r > kMaxElems) range_error(name, "size overflows");
    }
    return r;
  }
  void* data(Tensor* t) const { return t ? t->data() : nullptr; }
};

template <class P>
using Impl = void (*)(const P&);

template <class P>
void dispatch(const Call& c, OpId op, DType dtype, const P& p, Impl<P> ref, Impl<P> cpu, Impl<P> cuda) {
  bool ok = false;
  switch (c.backend) {
    case Backend::Ref: ok = supports_ref(op, dtype); break;
    case Backend::Cpu: ok = supports_cpu(op, dtype); break;
    case Backend::Cuda: ok = supports_cuda(op, dtype); break;
  }
  if (!ok)
    throw Napi::TypeError::New(c.env, c.fn + ": the " + backend_name(c.backend) + " backend does not support dtype " +
                                          dtype_name(dtype));
  try {
    switch (c.backend) {
      case Backend::Ref: ref(p); break;
      case Backend::Cpu: cpu(p); break;
      case Backend::Cuda: cuda(p); break;
    }
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::out_of_range& e) {  // data-dependent index checks (labels, ids, row indices)
    throw Napi::RangeError::New(c.env, c.fn + " (" + backend_name(c.backend) + "): " + e.what());
  } catch (const std::exception& e) {
    throw Napi::Error::New(c.env, c.fn + " (" + backend_name(c.backend) + "): " + e.what());
  }
}
#define LB_DISPATCH(c, op, dtype, p, fn) \
  dispatch(c, OpId::op, dtype, p, &fn##_ref, &fn##_cpu, &fn##_cuda)

const int64_t kI32 = INT_MAX;

void run_matmul(const Call& c) {
  MatmulParams p{};
  Tensor* a = c.tensor("a");
  Tensor* b = c.tensor("b");
  Tensor* out = c.tensor("c");
  Tensor* bias = c.tensor("bias", false);
  Tensor* pre = c.tensor("pre_gelu", false);
  p.M = (int)c.integer("M", 1, kI32);
  p.N = (int)c.integer("N", 1, kI32);
  p.K = (int)c.integer("K", 1, kI32);
  p.batch = (int)c.integer("batch", 1, kI32, false, 1);
  p.trans_a = c.boolean("trans_a", false);
  p.trans_b = c.boolean("trans_b", false);
  const int64_t rows_a = p.trans_a ? p.K : p.M, cols_a = p.trans_a ? p.M : p.K;
  const int64_t rows_b = p.trans_b ? p.N : p.K, cols_b = p.trans_b ? p.K : p.N;
  p.lda = c.integer("lda", cols_a, kMaxElems, false, cols_a);
  p.ldb = c.integer("ldb", cols_b, kMaxElems, false, cols_b);
  p.ldc = c.integer("ldc", p.N, kMaxElems, false, p.N);
  p.stride_a = c.integer("stride_a", 0, kMaxElems, false, rows_a * p.lda);
  p.stride_b = c.integer("stride_b", 0, kMaxElems, false, rows_b * p.ldb);
  p.stride_c = c.integer("stride_c", 0, kMaxElems, false, (int64_t)p.M * p.ldc);
  p.alpha = c.number("alpha", 1.0);
  p.beta = c.number("beta", 0.0);
  std::string epi = "none";
  if (Napi::Value v = c.args.Get("epilogue"); Call::given(v)) {
    if (!v.IsString()) c.type_error("epilogue", "expected 'none', 'bias' or 'bias_gelu'");
    epi = v.As<Napi::String>().Utf8Value();
  }
  if (epi == "none") p.epilogue = Epilogue::None;
  else if (epi == "bias") p.epilogue = Epilogue::Bias;
  else if (epi == "bias_gelu") p.epilogue = Epilogue::BiasGelu;
  else c.type_error("epilogue", "expected 'none', 'bias' or 'bias_gelu', got '" + epi + "'");
  if (p.epilogue != Epilogue::None && !bias) c.type_error("bias", "required by the '" + epi + "' epilogue");
  if (p.epilogue != Epilogue::BiasGelu && pre) c.type_error("pre_gelu", "only used with the 'bias_gelu' epilogue");
  c.floating(a, "a");
  p.ab_dtype = a->dtype;
  c.floating(out, "c");
  p.c_dtype = out->dtype;
  auto extent = [&](const char* name, int64_t stride, int64_t rows, int64_t ld, int64_t cols) {
    return c.mul(name, {(int64_t)p.batch - 1, stride}) + c.mul(name, {rows - 1, ld}) + cols;
  };
  c.check(a, "a", extent("a", p.stride_a, rows_a, p.lda, cols_a), p.ab_dtype);
  c.check(b, "b", extent("b", p.stride_b, rows_b, p.ldb, cols_b), p.ab_dtype);
  c.check(out, "c", extent("c", p.stride_c, p.M, p.ldc, p.N), p.c_dtype);
  c.check(pre, "pre_gelu", extent("pre_gelu", p.stride_c, p.M, p.ldc, p.N), p.c_dtype);
  c.check(bias, "bias", p.N, DType::F32);
  p.a = c.data(a); p.b = c.data(b); p.c = c.data(out);
  p.bias = (const float*)c.data(bias);
  p.pre_gelu = c.data(pre);
  LB_DISPATCH(c, matmul, p.ab_dtype, p, matmul_forward);
}

void run_bias_backward(const Call& c) {
  BiasBackwardParams p{};
  Tensor* dout = c.tensor("dout");
  Tensor* dbias = c.tensor("dbias");
  p.M = (int)c.integer("M", 1, kI32);
  p.N = (int)c.integer("N", 1, kI32);
  p.ld = c.integer("ld", p.N, kMaxElems, false, p.N);
  c.floating(dout, "dout");
  p.dtype = dout->dtype;
  c.check(dout, "dout", c.mul("dout", {(int64_t)p.M - 1, p.ld}) + p.N, p.dtype);
  c.check(dbias, "dbias", p.N, DType::F32);
  p.dout = c.data(dout); p.dbias = (float*)c.data(dbias);
  LB_DISPATCH(c, bias_backward, p.dtype, p, bias_backward);
}

void run_attention(const Call& c, bool backward) {
  AttentionParams p{};
  p.B = (int)c.integer("B", 1, kI32);
  p.T = (int)c.integer("T", 1, kI32);
  p.NH = (int)c.integer("NH", 1, kI32);
  p.D = (int)c.integer("D", 1, 1024);
  p.scale = c.number("scale", 1.0 / std::sqrt((double)p.D));
  p.dropout_p = c.number("dropout_p", 0.0);
  if (!(p.dropout_p >= 0.0f && p.dropout_p < 1.0f)) c.range_error("dropout_p", "must be in [0, 1)");
  p.seed = c.u64("seed", 0);
  p.offset = c.u64("offset", 0);
  Tensor* q = c.tensor("q");
  Tensor* k = c.tensor("k");
  Tensor* v = c.tensor("v");
  Tensor* out = c.tensor("out");
  Tensor* lse = c.tensor("lse");
  Tensor* mask = c.tensor("key_mask", false);
  c.floating(q, "q");
  p.dtype = q->dtype;
  const int64_t n = c.mul("q", {p.B, p.T, p.NH, p.D});
  // q, k, v (and dq, dk, dv) may be column slices of one (B*T, ld_qkv) array, e.g. a fused QKV projection
  const int64_t hd = (int64_t)p.NH * p.D;
  p.ld_qkv = c.integer("ld_qkv", hd, kMaxElems, false, hd);
  const int64_t nx = c.mul("ld_qkv", {(int64_t)p.B * p.T - 1, p.ld_qkv}) + hd;
  c.check(q, "q", nx, p.dtype);
  c.check(k, "k", nx, p.dtype);
  c.check(v, "v", nx, p.dtype);
  c.check(out, "out", n, p.dtype);
  c.check(lse, "lse", c.mul("lse", {p.B, p.NH, p.T}), DType::F32);
  c.check(mask, "key_mask", c.mul("key_mask", {p.B, p.T}), DType::I32);
  p.q = c.data(q); p.k = c.data(k); p.v = c.data(v); p.out = c.data(out);
  p.lse = (float*)c.data(lse);
  p.key_mask = (const int32_t*)c.data(mask);
  if (!backward) {
    LB_DISPATCH(c, attention, p.dtype, p, attention_forward);
    return;
  }
  Tensor* dout = c.tensor("dout");
  Tensor* dq = c.tensor("dq");
  Tensor* dk = c.tensor("dk");
  Tensor* dv = c.tensor("dv");
  Tensor* delta = c.tensor("delta");
  c.check(dout, "dout", n, p.dtype);
  c.check(dq, "dq", nx, p.dtype);
  c.check(dk, "dk", nx, p.dtype);
  c.check(dv, "dv", nx, p.dtype);
  c.check(delta, "delta", c.mul("delta", {p.B, p.NH, p.T}), DType::F32);
  p.dout = c.data(dout); p.dq = c.data(dq); p.dk = c.data(dk); p.dv = c.data(dv);
  p.delta = (float*)c.data(delta);
  LB_DISPATCH(c, attention, p.dtype, p, attention_backward);
}

void run_layernorm(const Call& c, bool backward) {
  LayernormParams p{};
  p.rows = (int)c.integer("rows", 1, kI32);
  p.cols = (int)c.integer("cols", 1, kI32);
  p.eps = c.number("eps", 1e-12);
  if (!(p.eps >= 0)) c.range_error("eps", "must be >= 0");
  const int64_t n = c.mul("x", {p.rows, p.cols});
  Tensor* x = c.tensor("x");
  c.floating(x, "x");
  p.dtype = x->dtype;
  c.check(x, "x", n, p.dtype);
  Tensor* mean = c.tensor("mean");
  Tensor* rstd = c.tensor("rstd");
  Tensor* gamma = c.tensor("gamma");
  c.check(mean, "mean", p.rows, DType::F32);
  c.check(rstd, "rstd", p.rows, DType::F32);
  c.check(gamma, "gamma", p.cols, DType::F32);
  p.x = c.data(x);
  p.mean = (float*)c.data(mean); p.rstd = (float*)c.data(rstd);
  p.gamma = (const float*)c.data(gamma);
  if (!backward) {
    Tensor* residual = c.tensor("residual", false);
    Tensor* sum = c.tensor("sum", false);
    Tensor* out = c.tensor("out");
    Tensor* beta = c.tensor("beta");
    if (sum && !residual) c.type_error("sum", "only meaningful with a residual");
    c.check(residual, "residual", n, p.dtype);
    c.check(sum, "sum", n, p.dtype);
    c.check(out, "out", n, p.dtype);
    c.check(beta, "beta", p.cols, DType::F32);
    p.residual = c.data(residual); p.sum = c.data(sum); p.out = c.data(out);
    p.beta = (const float*)c.data(beta);
    LB_DISPATCH(c, layernorm, p.dtype, p, layernorm_forward);
    return;
  }
  Tensor* dout = c.tensor("dout");
  Tensor* dx = c.tensor("dx");
  Tensor* dgamma = c.tensor("dgamma");
  Tensor* dbeta = c.tensor("dbeta");
  c.check(dout, "dout", n, p.dtype);
  c.check(dx, "dx", n, p.dtype);
  c.check(dgamma, "dgamma", p.cols, DType::F32);
  c.check(dbeta, "dbeta", p.cols, DType::F32);
  p.dout = c.data(dout); p.dx = c.data(dx);
  p.dgamma = (float*)c.data(dgamma); p.dbeta = (float*)c.data(dbeta);
  LB_DISPATCH(c, layernorm, p.dtype, p, layernorm_backward);
}

void run_activation(const Call& c, bool is_tanh, bool backward) {
  ActivationParams p{};
  Tensor* first = backward ? c.tensor("dx") : c.tensor("out");
  c.floating(first, backward ? "dx" : "out");
  p.dtype = first->dtype;
  p.n = c.integer("n", 0, kMaxElems, false, first->numel);
  if (!backward) {
    Tensor* x = c.tensor("x");
    c.check(x, "x", p.n, p.dtype);
    c.check(first, "out", p.n, p.dtype);
    p.x = c.data(x); p.out = c.data(first);
  } else {
    Tensor* src = is_tanh ? c.tensor("out") : c.tensor("x");
    Tensor* dout = c.tensor("dout");
    c.check(src, is_tanh ? "out" : "x", p.n, p.dtype);
    c.check(dout, "dout", p.n, p.dtype);
    c.check(first, "dx", p.n, p.dtype);
    if (is_tanh) p.out = c.data(src); else p.x = c.data(src);
    p.dout = c.data(dout); p.dx = c.data(first);
  }
  if (is_tanh) {
    if (backward) LB_DISPATCH(c, tanh, p.dtype, p, tanh_backward);
    else LB_DISPATCH(c, tanh, p.dtype, p, tanh_forward);
  } else {
    if (backward) LB_DISPATCH(c, gelu, p.dtype, p, gelu_backward);
    else LB_DISPATCH(c, gelu, p.dtype, p, gelu_forward);
  }
}

void run_softmax_xent(const Call& c) {
  SoftmaxXentParams p{};
  p.N = (int)c.integer("N", 1, kI32);
  p.V = (int)c.integer("V", 1, kI32);
  p.ld = c.integer("ld", p.V, kMaxElems, false, p.V);
  p.ignore_index = (int)c.integer("ignore_index", INT_MIN, INT_MAX, false, -1);
  p.grad_scale = c.number("grad_scale", 1.0);
  Tensor* logits = c.tensor("logits");
  Tensor* labels = c.tensor("labels");
  Tensor* losses = c.tensor("losses");
  Tensor* correct = c.tensor("correct", false);
  Tensor* dlogits = c.tensor("dlogits", false);
  c.floating(logits, "logits");
  p.dtype = logits->dtype;
  const int64_t n = c.mul("logits", {p.N - 1, p.ld}) + p.V;
  c.check(logits, "logits", n, p.dtype);
  c.check(dlogits, "dlogits", n, p.dtype);
  c.check(labels, "labels", p.N, DType::I32);
  c.check(losses, "losses", p.N, DType::F32);
  c.check(correct, "correct", p.N, DType::I32);
  p.logits = c.data(logits); p.labels = (const int32_t*)c.data(labels);
  p.losses = (float*)c.data(losses); p.correct = (int32_t*)c.data(correct);
  p.dlogits = c.data(dlogits);
  LB_DISPATCH(c, softmax_xent, p.dtype, p, softmax_xent_forward);
}

void run_embedding(const Call& c, bool backward) {
  EmbeddingParams p{};
  p.B = (int)c.integer("B", 1, kI32);
  p.T = (int)c.integer("T", 1, kI32);
  p.C = (int)c.integer("C", 1, kI32);
  p.V = (int)c.integer("V", 1, kI32);
  p.max_pos = (int)c.integer("max_pos", 1, kI32);
  p.type_vocab = (int)c.integer("type_vocab", 1, kI32);
  if (p.T > p.max_pos) c.range_error("T", "sequence length " + std::to_string(p.T) + " exceeds max_pos " + std::to_string(p.max_pos));
  const int64_t bt = c.mul("ids", {p.B, p.T});
  Tensor* ids = c.tensor("ids");
  Tensor* types = c.tensor("type_ids", false);
  c.check(ids, "ids", bt, DType::I32);
  c.check(types, "type_ids", bt, DType::I32);
  p.ids = (const int32_t*)c.data(ids); p.type_ids = (const int32_t*)c.data(types);
  const int64_t nout = c.mul("out", {p.B, p.T, p.C});
  if (!backward) {
    Tensor* wte = c.tensor("wte");
    Tensor* wpe = c.tensor("wpe");
    Tensor* wtt = c.tensor("wtt");
    Tensor* out = c.tensor("out");
    c.check(wte, "wte", c.mul("wte", {p.V, p.C}), DType::F32);
    c.check(wpe, "wpe", c.mul("wpe", {p.max_pos, p.C}), DType::F32);
    c.check(wtt, "wtt", c.mul("wtt", {p.type_vocab, p.C}), DType::F32);
    c.floating(out, "out");
    p.dtype = out->dtype;
    c.check(out, "out", nout, p.dtype);
    p.wte = (const float*)c.data(wte); p.wpe = (const float*)c.data(wpe); p.wtt = (const float*)c.data(wtt);
    p.out = c.data(out);
    LB_DISPATCH(c, embedding, p.dtype, p, embedding_forward);
    return;
  }
  Tensor* dout = c.tensor("dout");
  Tensor* dwte = c.tensor("dwte");
  Tensor* dwpe = c.tensor("dwpe", false);
  Tensor* dwtt = c.tensor("dwtt", false);
  c.floating(dout, "dout");
  p.dtype = dout->dtype;
  c.check(dout, "dout", nout, p.dtype);
  c.check(dwte, "dwte", c.mul("dwte", {p.V, p.C}), DType::F32);
  c.check(dwpe, "dwpe", c.mul("dwpe", {p.max_pos, p.C}), DType::F32);
  c.check(dwtt, "dwtt", c.mul("dwtt", {p.type_vocab, p.C}), DType::F32);
  p.dout = c.data(dout);
  p.dwte = (float*)c.data(dwte); p.dwpe = (float*)c.data(dwpe); p.dwtt = (float*)c.data(dwtt);
  LB_DISPATCH(c, embedding, p.dtype, p, embedding_backward);
}

void run_rows(const Call& c, bool scatter) {
  RowsParams p{};
  p.M = (int)c.integer("M", 0, kI32);
  p.C = (int)c.integer("C", 1, kI32);
  Tensor* src = c.tensor("src");
  Tensor* dst = c.tensor("dst");
  Tensor* index = c.tensor("index");
  c.floating(src, "src");
  p.dtype = src->dtype;
  if (scatter) {
    p.n_dst = (int)c.integer("n_dst", 1, kI32);
    c.check(src, "src", c.mul("src", {p.M, p.C}), p.dtype);
    c.check(dst, "dst", c.mul("dst", {p.n_dst, p.C}), p.dtype);
  } else {
    p.n_src = (int)c.integer("n_src", 1, kI32);
    c.check(src, "src", c.mul("src", {p.n_src, p.C}), p.dtype);
    c.check(dst, "dst", c.mul("dst", {p.M, p.C}), p.dtype);
  }
  c.check(index, "index", p.M, DType::I32);
  p.src = c.data(src); p.dst = c.data(dst); p.index = (const int32_t*)c.data(index);
  if (scatter) LB_DISPATCH(c, scatter_add_rows, p.dtype, p, scatter_add_rows_forward);
  else LB_DISPATCH(c, gather_rows, p.dtype, p, gather_rows_forward);
}

void run_dropout(const Call& c, bool backward) {
  DropoutParams p{};
  Tensor* in = c.tensor(backward ? "dout" : "x");
  Tensor* out = c.tensor(backward ? "dx" : "out");
  c.floating(in, backward ? "dout" : "x");
  p.dtype = in->dtype;
  p.n = c.integer("n", 0, kMaxElems, false, in->numel);
  p.p = c.number("p", 0.0, true);
  if (!(p.p >= 0.0f && p.p < 1.0f)) c.range_error("p", "must be in [0, 1)");
  p.seed = c.u64("seed", 0);
  p.offset = c.u64("offset", 0);
  c.check(in, backward ? "dout" : "x", p.n, p.dtype);
  c.check(out, backward ? "dx" : "out", p.n, p.dtype);
  if (backward) {
    p.dout = c.data(in); p.dx = c.data(out);
    LB_DISPATCH(c, dropout, p.dtype, p, dropout_backward);
  } else {
    p.x = c.data(in); p.out = c.data(out);
    LB_DISPATCH(c, dropout, p.dtype, p, dropout_forward);
  }
}

void run_adamw(const Call& c) {
  AdamwParams p{};
  Tensor* param = c.tensor("param");
  p.n = c.integer("n", 0, kMaxElems, false, param->numel);
  Tensor* grad = c.tensor("grad");
  Tensor* m = c.tensor("m");
  Tensor* v = c.tensor("v");
  Tensor* lowp = c.tensor("param_lowp", false);
  c.check(param, "param", p.n, DType::F32);
  c.check(grad, "grad", p.n, DType::F32);
  c.check(m, "m", p.n, DType::F32);
  c.check(v, "v", p.n, DType::F32);
  c.check(lowp, "param_lowp", p.n, DType::BF16);
  p.lr = c.number("lr", 0.0, true);
  p.beta1 = c.number("beta1", 0.9);
  p.beta2 = c.number("beta2", 0.999);
  p.eps = c.number("eps", 1e-6);
  p.weight_decay = c.number("weight_decay", 0.0);
  p.grad_scale = c.number("grad_scale", 1.0);
  if (!(p.beta1 >= 0 && p.beta1 < 1)) c.range_error("beta1", "must be in [0, 1)");
  if (!(p.beta2 >= 0 && p.beta2 < 1)) c.range_error("beta2", "must be in [0, 1)");
  p.step = (int)c.integer("step", 1, kI32);
  p.param = (float*)c.data(param); p.grad = (const float*)c.data(grad);
  p.m = (float*)c.data(m); p.v = (float*)c.data(v); p.param_lowp = c.data(lowp);
  LB_DISPATCH(c, adamw, DType::F32, p, adamw_forward);
}

void run_grad_norm(const Call& c) {
  GradNormParams p{};
  Tensor* x = c.tensor("x");
  Tensor* out = c.tensor("out");
  p.n = c.integer("n", 0, kMaxElems, false, x->numel);
  c.check(x, "x", p.n, DType::F32);
  c.check(out, "out", 1, DType::F32);
  p.x = (const float*)c.data(x); p.out = (float*)c.data(out);
  LB_DISPATCH(c, grad_norm, DType::F32, p, grad_norm_forward);
}

void run_axpby(const Call& c) {
  AxpbyParams p{};
  Tensor* a = c.tensor("a");
  Tensor* b = c.tensor("b", false);
  Tensor* out = c.tensor("out");
  c.floating(a, "a");
  p.dtype = a->dtype;
  p.n = c.integer("n", 0, kMaxElems, false, out->numel);
  p.alpha = c.number("alpha", 1.0);
  p.beta = c.number("beta", 1.0);
  c.check(a, "a", p.n, p.dtype);
  c.check(b, "b", p.n, p.dtype);
  c.check(out, "out", p.n, p.dtype);
  p.a = c.data(a); p.b = c.data(b); p.out = c.data(out);
  LB_DISPATCH(c, axpby, p.dtype, p, axpby_forward);
}

void run_scale(const Call& c) {
  ScaleParams p{};
  Tensor* x = c.tensor("x");
  c.floating(x, "x");
  p.dtype = x->dtype;
  p.n = c.integer("n", 0, kMaxElems, false, x->numel);
  p.s = c.number("s", 0.0, true);
  c.check(x, "x", p.n, p.dtype);
  p.x = c.data(x);
  LB_DISPATCH(c, scale, p.dtype, p, scale_forward);
}

void run_fill(const Call& c) {
  FillParams p{};
  Tensor* x = c.tensor("x");
  p.dtype = x->dtype;
  p.n = c.integer("n", 0, kMaxElems, false, x->numel);
  p.value = c.number("value", 0.0, true);
  c.check(x, "x", p.n, p.dtype);
  p.x = c.data(x);
  LB_DISPATCH(c, fill, p.dtype, p, fill_forward);
}

void run_copy(const Call& c) {
  CopyParams p{};
  Tensor* src = c.tensor("src");
  Tensor* dst = c.tensor("dst");
  p.src_dtype = src->dtype;
  p.dst_dtype = dst->dtype;
  if ((p.src_dtype == DType::I32) != (p.dst_dtype == DType::I32))
    c.type_error("dst", std::string("cannot copy ") + dtype_name(p.src_dtype) + " to " + dtype_name(p.dst_dtype));
  p.n = c.integer("n", 0, kMaxElems, false, src->numel);
  c.check(src, "src", p.n, p.src_dtype);
  c.check(dst, "dst", p.n, p.dst_dtype);
  p.src = c.data(src); p.dst = c.data(dst);
  LB_DISPATCH(c, copy, p.src_dtype, p, copy_forward);
}

}  // namespace

Backend parse_backend(Napi::Env env, const Napi::Value& v, const std::string& fn) {
  if (!v.IsString()) throw Napi::TypeError::New(env, fn + ": backend must be 'ref', 'cpu' or 'cuda'");
  const std::string s = v.As<Napi::String>().Utf8Value();
  if (s == "ref") return Backend::Ref;
  if (s == "cpu") return Backend::Cpu;
  if (s == "cuda") {
    require_cuda(env, fn);
    return Backend::Cuda;
  }
  throw Napi::TypeError::New(env, fn + ": backend must be 'ref', 'cpu' or 'cuda', got '" + s + "'");
}

// run(op, pass, backend, args)
Napi::Value Run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsString() || !info[1].IsString() || !info[3].IsObject())
    throw Napi::TypeError::New(env, "run(op, pass, backend, args): expected (string, 'forward'|'backward', backend, object)");
  const std::string op = info[0].As<Napi::String>().Utf8Value();
  const std::string pass = info[1].As<Napi::String>().Utf8Value();
  if (pass != "forward" && pass != "backward")
    throw Napi::TypeError::New(env, op + ": pass must be 'forward' or 'backward', got '" + pass + "'");
  const bool bw = pass == "backward";
  Call c{env, op + "_" + pass, info[3].As<Napi::Object>(), Backend::Cpu, Device::Cpu};
  c.backend = parse_backend(env, info[2], c.fn);
  c.device = c.backend == Backend::Cuda ? Device::Cuda : Device::Cpu;
  auto forward_only = [&]() {
    if (bw) throw Napi::TypeError::New(env, op + ": has no backward pass (its gradient is another op)");
  };
  if (op == "matmul") { forward_only(); run_matmul(c); }
  else if (op == "bias_backward") { forward_only(); c.fn = "bias_backward"; run_bias_backward(c); }
  else if (op == "attention") run_attention(c, bw);
  else if (op == "layernorm") run_layernorm(c, bw);
  else if (op == "gelu") run_activation(c, false, bw);
  else if (op == "tanh") run_activation(c, true, bw);
  else if (op == "softmax_xent") { forward_only(); run_softmax_xent(c); }
  else if (op == "embedding") run_embedding(c, bw);
  else if (op == "gather_rows") { forward_only(); run_rows(c, false); }
  else if (op == "scatter_add_rows") { forward_only(); run_rows(c, true); }
  else if (op == "dropout") run_dropout(c, bw);
  else if (op == "adamw") { forward_only(); run_adamw(c); }
  else if (op == "grad_norm") { forward_only(); run_grad_norm(c); }
  else if (op == "axpby") { forward_only(); run_axpby(c); }
  else if (op == "scale") { forward_only(); run_scale(c); }
  else if (op == "fill") { forward_only(); run_fill(c); }
  else if (op == "copy") { forward_only(); run_copy(c); }
  else throw Napi::TypeError::New(env, "run: unknown op '" + op + "'");
  return env.Undefined();
}

// supports(backend, op, dtype) -> boolean (a CPU-only build answers false for cuda)
Napi::Value Supports(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsString() || !info[2].IsString())
    throw Napi::TypeError::New(env, "supports(backend, op, dtype): expected three strings");
  const std::string be = info[0].As<Napi::String>().Utf8Value();
  const std::string op = info[1].As<Napi::String>().Utf8Value();
  const std::string dt = info[2].As<Napi::String>().Utf8Value();
  OpId id;
  if (!op_from_name(op.c_str(), &id)) throw Napi::TypeError::New(env, "supports: unknown op '" + op + "'");
  DType dtype = parse_dtype(env, info[2], "supports");
  (void)dt;
  bool ok;
  if (be == "ref") ok = supports_ref(id, dtype);
  else if (be == "cpu") ok = supports_cpu(id, dtype);
  else if (be == "cuda") ok = supports_cuda(id, dtype);
  else throw Napi::TypeError::New(env, "supports: backend must be 'ref', 'cpu' or 'cuda'");
  return Napi::Boolean::New(env, ok);
}

}  // namespace lb
