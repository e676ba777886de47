// ops.h: the one op interface of linkbert.
//
// Every op has one plain params struct, filled by native/ops_napi.cc after the shapes, dtypes and
// devices have been validated (CHECK_SHAPE style), and passed unchanged to every implementation:
//   <op>_<pass>_ref   kernels/ref/<op>.cpp   naive loops, fp64 accumulation: the oracle
//   <op>_<pass>_cpu   kernels/cpu/<op>.cpp   blocked, SIMD-friendly, threaded
//   <op>_<pass>_cuda  kernels/cuda/<op>.cu   hand-written CUDA (enqueued on the backend stream)
// All tensors are row-major and contiguous unless a leading dimension says otherwise.
// Implementations may throw std::runtime_error("<op>: ..."); the N-API layer turns it into a JS Error.
//
// Gradient contract (llm.c): parameter gradients accumulate (+=) so gradient accumulation works;
// activation gradients are written (=). Each backward declaration says which is which.
#pragma once
#include <cstddef>
#include <cstdint>

namespace lb {

enum class DType : int { F32 = 0, BF16 = 1, I32 = 2 };
enum class Backend : int { Ref = 0, Cpu = 1, Cuda = 2 };

inline size_t dtype_size(DType t) { return t == DType::BF16 ? 2 : 4; }
inline const char* dtype_name(DType t) { return t == DType::F32 ? "f32" : t == DType::BF16 ? "bf16" : "i32"; }
inline const char* backend_name(Backend b) { return b == Backend::Ref ? "ref" : b == Backend::Cpu ? "cpu" : "cuda"; }

// Op ids, for supports(op, dtype) and error messages.
#define LB_FOR_EACH_OP(X) \
  X(matmul) X(bias_backward) X(attention) X(layernorm) X(gelu) X(tanh) X(softmax_xent) \
  X(embedding) X(gather_rows) X(scatter_add_rows) X(dropout) X(adamw) X(grad_norm) \
  X(axpby) X(scale) X(fill) X(copy)
enum class OpId : int {
#define LB_OP_ENUM(name) name,
  LB_FOR_EACH_OP(LB_OP_ENUM)
#undef LB_OP_ENUM
  count_
};
const char* op_name(OpId op);
bool op_from_name(const char* name, OpId* out);

// -------------------------------------------------------------------------------------------
// matmul: C[b] = alpha * op(A[b]) @ op(B[b]) + beta * C[b]   (+ bias[n]) (then GELU)
//   op(A) is (M,K): A is stored (M,K) with row stride lda, or (K,M) when trans_a.
//   op(B) is (K,N): B is stored (K,N) with row stride ldb, or (N,K) when trans_b (nn.Linear weight).
//   Epilogue (applied after alpha/beta): Bias adds bias[n]; BiasGelu stores the pre-activation
//   C + bias into pre_gelu (if non-null) and writes gelu_erf(pre) into C.
//   A linear layer y = x W^T + b is matmul(A=x, B=W, trans_b=true, epilogue=Bias).
//   a, b: dtype ab; c, pre_gelu: dtype c; bias: f32. Accumulation is f32 (ref: f64).
enum class Epilogue : int { None = 0, Bias = 1, BiasGelu = 2 };
struct MatmulParams {
  const void* a;      // A (batch, M,K) or (batch, K,M)
  const void* b;      // B (batch, K,N) or (batch, N,K)
  void* c;            // C (batch, M,N)
  const float* bias;  // bias (N) or null
  void* pre_gelu;     // pre-activation (batch, M,N) or null; only with BiasGelu
  int M, N, K;
  int batch;          // >= 1
  bool trans_a, trans_b;
  int64_t lda, ldb, ldc;                   // row strides in elements
  int64_t stride_a, stride_b, stride_c;    // batch strides in elements
  float alpha, beta;                       // beta = 1 accumulates (parameter grads +=)
  Epilogue epilogue;
  DType ab_dtype, c_dtype;
};
void matmul_forward_ref(const MatmulParams& p);
void matmul_forward_cpu(const MatmulParams& p);
void matmul_forward_cuda(const MatmulParams& p);

// bias_backward: dbias[n] += sum_m dout[m, n]   (parameter grad: +=)
struct BiasBackwardParams {
  const void* dout;  // dout (M,N), row stride ld, dtype
  float* dbias;      // dbias (N) f32
  int M, N;
  int64_t ld;        // >= N
  DType dtype;
};
void bias_backward_ref(const BiasBackwardParams& p);
void bias_backward_cpu(const BiasBackwardParams& p);
void bias_backward_cuda(const BiasBackwardParams& p);

// -------------------------------------------------------------------------------------------
// attention: out = softmax(Q K^T * scale + key_mask) V per (batch, head), non-causal.
//   q, k, v, out: (B, T, NH, D) contiguous, i.e. the natural output of the Q/K/V linears (B*T, NH*D).
//   key_mask (B, T) int32: 1 = attend, 0 = padding (an additive -inf on that key). A query row whose
//   keys are all padding gets out = 0 and lse = -inf (HF's finfo.min gives a uniform average there;
//   BERT inputs always keep [CLS], so it never happens in training).
//   lse (B, NH, T) f32: log-sum-exp of the scaled, masked scores, saved for the backward pass.
//   Dropout on the attention probabilities when dropout_p > 0: keep element (b,h,i,j) iff
//   lb_dropout_keep(seed, offset + ((b*NH + h)*T + i)*T + j, p) (kernels/common.h), scaled by 1/(1-p);
//   the backward pass regenerates the same mask. Fast paths never materialise T x T.
// backward (activation grads =): dq, dk, dv from dout, using q, k, v, out, lse.
//   delta (B, NH, T) f32 scratch: rowsum(dout * out).
struct AttentionParams {
  const void* q; const void* k; const void* v;  // (B,T,NH,D), rows ld_qkv apart
  int64_t ld_qkv;                                // elements between tokens in q, k, v, dq, dk, dv: NH*D,
                                                 // or 3*NH*D where one projection wrote q|k|v per token
  void* out;                                     // (B,T,NH,D)
  float* lse;                                    // (B,NH,T)
  const int32_t* key_mask;                       // (B,T) or null
  int B, T, NH, D;
  float scale;                                   // usually 1/sqrt(D)
  float dropout_p; uint64_t seed, offset;
  DType dtype;
  // backward only
  const void* dout;                              // (B,T,NH,D)
  void* dq; void* dk; void* dv;                  // (B,T,NH,D), rows ld_qkv apart, written (=)
  float* delta;                                  // (B,NH,T) scratch
};
void attention_forward_ref(const AttentionParams& p);
void attention_forward_cpu(const AttentionParams& p);
void attention_forward_cuda(const AttentionParams& p);
void attention_backward_ref(const AttentionParams& p);
void attention_backward_cpu(const AttentionParams& p);
void attention_backward_cuda(const AttentionParams& p);

// -------------------------------------------------------------------------------------------
// layernorm over the last dim: s = x + residual (residual may be null); out = (s - mean) * rstd * gamma + beta.
//   If residual is given and sum is non-null, s is stored into sum (the backward needs LN's input).
// backward: reads the LN input (`x`, i.e. the stored sum when a residual was fused), mean, rstd, gamma,
//   dout; writes dx (=, the grad of LN's input: the caller routes it to both x and residual) and
//   accumulates dgamma, dbeta (+=). dgamma/dbeta reductions are deterministic. dx may equal dout (in
//   place, as the training step runs it: each row is read before its dx is written).
struct LayernormParams {
  const void* x;          // (rows, cols)
  const void* residual;   // (rows, cols) or null
  void* sum;              // (rows, cols) or null: x + residual
  void* out;              // (rows, cols)
  float* mean;            // (rows)
  float* rstd;            // (rows)
  const float* gamma;     // (cols)
  const float* beta;      // (cols)
  int rows, cols;
  float eps;
  DType dtype;            // of x, residual, sum, out, dout, dx
  // backward only
  const void* dout;       // (rows, cols)
  void* dx;               // (rows, cols) written (=)
  float* dgamma;          // (cols) +=
  float* dbeta;           // (cols) +=
};
void layernorm_forward_ref(const LayernormParams& p);
void layernorm_forward_cpu(const LayernormParams& p);
void layernorm_forward_cuda(const LayernormParams& p);
void layernorm_backward_ref(const LayernormParams& p);
void layernorm_backward_cpu(const LayernormParams& p);
void layernorm_backward_cuda(const LayernormParams& p);

// -------------------------------------------------------------------------------------------
// gelu (erf form, as BERT) and tanh (the pooler): elementwise.
//   forward: out = f(x). backward: dx = dout * f'(x) (=); tanh's backward uses out (1 - out^2).
//   x may equal out (in place) in the forward; dx may equal dout in the backward.
struct ActivationParams {
  const void* x;      // (n)  gelu backward reads x; tanh backward reads out
  void* out;          // (n)
  const void* dout;   // (n)
  void* dx;           // (n)
  int64_t n;
  DType dtype;
};
void gelu_forward_ref(const ActivationParams& p);
void gelu_forward_cpu(const ActivationParams& p);
void gelu_forward_cuda(const ActivationParams& p);
void gelu_backward_ref(const ActivationParams& p);
void gelu_backward_cpu(const ActivationParams& p);
void gelu_backward_cuda(const ActivationParams& p);
void tanh_forward_ref(const ActivationParams& p);
void tanh_forward_cpu(const ActivationParams& p);
void tanh_forward_cuda(const ActivationParams& p);
void tanh_backward_ref(const ActivationParams& p);
void tanh_backward_cpu(const ActivationParams& p);
void tanh_backward_cuda(const ActivationParams& p);

// -------------------------------------------------------------------------------------------
// softmax_xent: fused softmax cross-entropy, one pass per row.
//   losses[r] = logsumexp(logits[r]) - logits[r, labels[r]]   (0 for ignored rows)
//   correct[r] = 1 if argmax(logits[r]) == labels[r] (ties: lowest index), else 0 (0 for ignored)
//   dlogits[r] = (softmax(logits[r]) - onehot(labels[r])) * grad_scale  (= ; all 0 for ignored rows)
//   dlogits may alias logits (in place). labels[r] == ignore_index skips the row; any other label
//   outside [0, V) is an error.
struct SoftmaxXentParams {
  const void* logits;     // (N, V), row stride ld
  const int32_t* labels;  // (N)
  float* losses;          // (N) f32
  int32_t* correct;       // (N) or null
  void* dlogits;          // (N, V), row stride ld, or null (forward only)
  int N, V;
  int64_t ld;
  int ignore_index;
  float grad_scale;       // usually 1 / (number of non-ignored rows)
  DType dtype;            // of logits and dlogits
};
void softmax_xent_forward_ref(const SoftmaxXentParams& p);
void softmax_xent_forward_cpu(const SoftmaxXentParams& p);
void softmax_xent_forward_cuda(const SoftmaxXentParams& p);

// -------------------------------------------------------------------------------------------
// embedding: out[b,t] = wte[ids[b,t]] + wpe[t] + wtt[type_ids[b,t]]
// backward (parameter grads +=): dwte[ids] += dout, dwpe[t] += sum_b dout, dwtt[types] += dout,
//   in a fixed order (no float atomics), so results are bit-reproducible.
struct EmbeddingParams {
  const int32_t* ids;       // (B,T)
  const int32_t* type_ids;  // (B,T) or null (all type 0)
  const float* wte;         // (V, C)
  const float* wpe;         // (max_pos, C)
  const float* wtt;         // (type_vocab, C)
  void* out;                // (B,T,C) dtype
  int B, T, C, V, max_pos, type_vocab;
  DType dtype;              // of out / dout
  // backward only
  const void* dout;         // (B,T,C)
  float* dwte; float* dwpe; float* dwtt;  // +=; dwpe/dwtt may be null to skip
};
void embedding_forward_ref(const EmbeddingParams& p);
void embedding_forward_cpu(const EmbeddingParams& p);
void embedding_forward_cuda(const EmbeddingParams& p);
void embedding_backward_ref(const EmbeddingParams& p);
void embedding_backward_cpu(const EmbeddingParams& p);
void embedding_backward_cuda(const EmbeddingParams& p);

// -------------------------------------------------------------------------------------------
// gather_rows: dst[i] = src[index[i]]            (=)
// scatter_add_rows: dst[index[i]] += src[i]      (+=), duplicates allowed, summed in order of i
struct RowsParams {
  const void* src;        // gather: (n_src, C); scatter: (M, C)
  void* dst;              // gather: (M, C); scatter: (n_dst, C)
  const int32_t* index;   // (M), each in [0, n_src) for gather / [0, n_dst) for scatter
  int M, C;
  int n_src, n_dst;
  DType dtype;
};
void gather_rows_forward_ref(const RowsParams& p);
void gather_rows_forward_cpu(const RowsParams& p);
void gather_rows_forward_cuda(const RowsParams& p);
void scatter_add_rows_forward_ref(const RowsParams& p);
void scatter_add_rows_forward_cpu(const RowsParams& p);
void scatter_add_rows_forward_cuda(const RowsParams& p);

// -------------------------------------------------------------------------------------------
// dropout: out[i] = keep(i) ? x[i] / (1 - p) : 0, keep(i) = lb_dropout_keep(seed, offset + i, p).
// backward: dx[i] = keep(i) ? dout[i] / (1 - p) : 0 (=): the mask is regenerated, never stored.
struct DropoutParams {
  const void* x; void* out;     // (n); may alias
  const void* dout; void* dx;   // (n); may alias
  int64_t n;
  float p;
  uint64_t seed, offset;
  DType dtype;
};
void dropout_forward_ref(const DropoutParams& p);
void dropout_forward_cpu(const DropoutParams& p);
void dropout_forward_cuda(const DropoutParams& p);
void dropout_backward_ref(const DropoutParams& p);
void dropout_backward_cpu(const DropoutParams& p);
void dropout_backward_cuda(const DropoutParams& p);

// -------------------------------------------------------------------------------------------
// adamw (fused, decoupled weight decay, bias correction), over fp32 master weights:
//   g = grad * grad_scale (grad_scale carries the clip coefficient)
//   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
//   param -= lr * ( (m / (1-b1^step)) / (sqrt(v / (1-b2^step)) + eps) + weight_decay * param )
//   param_lowp (bf16 copy for mixed precision) is refreshed when non-null.
struct AdamwParams {
  float* param;          // (n) f32 master
  const float* grad;     // (n) f32
  float* m; float* v;    // (n) f32
  void* param_lowp;      // (n) bf16 or null
  int64_t n;
  float lr, beta1, beta2, eps, weight_decay, grad_scale;
  int step;              // 1-based
};
void adamw_forward_ref(const AdamwParams& p);
void adamw_forward_cpu(const AdamwParams& p);
void adamw_forward_cuda(const AdamwParams& p);

// grad_norm: out[0] = sum(x^2) over n f32 values, deterministic (fixed reduction tree).
struct GradNormParams {
  const float* x;   // (n)
  float* out;       // (1)
  int64_t n;
};
void grad_norm_forward_ref(const GradNormParams& p);
void grad_norm_forward_cpu(const GradNormParams& p);
void grad_norm_forward_cuda(const GradNormParams& p);

// -------------------------------------------------------------------------------------------
// Elementwise.
// axpby: out = alpha * a + beta * b   (b may be null: out = alpha * a; out may alias a or b)
struct AxpbyParams { const void* a; const void* b; void* out; int64_t n; float alpha, beta; DType dtype; };
void axpby_forward_ref(const AxpbyParams& p);
void axpby_forward_cpu(const AxpbyParams& p);
void axpby_forward_cuda(const AxpbyParams& p);
// scale: x *= s
struct ScaleParams { void* x; int64_t n; float s; DType dtype; };
void scale_forward_ref(const ScaleParams& p);
void scale_forward_cpu(const ScaleParams& p);
void scale_forward_cuda(const ScaleParams& p);
// fill: x = value (for i32 the value is truncated to an integer)
struct FillParams { void* x; int64_t n; float value; DType dtype; };
void fill_forward_ref(const FillParams& p);
void fill_forward_cpu(const FillParams& p);
void fill_forward_cuda(const FillParams& p);
// copy: dst = cast(src); f32 -> bf16 rounds to nearest even; bf16 -> f32 is exact; i32 copies only to i32.
struct CopyParams { const void* src; void* dst; int64_t n; DType src_dtype, dst_dtype; };
void copy_forward_ref(const CopyParams& p);
void copy_forward_cpu(const CopyParams& p);
void copy_forward_cuda(const CopyParams& p);

// -------------------------------------------------------------------------------------------
// Backends answer supports(op, dtype): `dtype` is the op's main data dtype (ab_dtype for matmul).
bool supports_ref(OpId op, DType dtype);
bool supports_cpu(OpId op, DType dtype);
bool supports_cuda(OpId op, DType dtype);

// CPU backend threads (kernels/cpu/threadpool.cpp).
int cpu_num_threads();
void cpu_set_num_threads(int n);
const char* cpu_simd_level();  // "avx512", "avx512f (GEMM only)", "avx2+fma", "sse2", "neon", "scalar"
// Caps the ISA of the cpu backend (kernels/cpu/matmul.cpp): "avx512" (all the CPU has, the default),
// "avx2" (the AVX2 + FMA GEMM, the AVX2 variants of the plain loops, the portable code) or "generic"
// (portable code only), so that one machine runs, and tests, what a smaller CPU runs. nullptr, or why
// not (an unknown name, or the CPU lacks it).
const char* set_cpu_isa(const char* name);
// Whether the cpu backend's bf16 GEMM multiplies with AVX512-BF16 dot products (else it widens to f32).
bool cpu_bf16_dot();

}  // namespace lb
