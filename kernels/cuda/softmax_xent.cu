// softmax_xent.cu: fused softmax cross-entropy, one block per row.
//   pass 1 (the one read for the loss): per thread an online (max, sum-exp) state and an argmax over its
//   strided columns; the block combines them in a fixed tree (deterministic).
//   pass 2 (only with dlogits): dlogits = (softmax - onehot) * grad_scale (=); dlogits may alias logits:
//   each element is read by the thread that overwrites it, and logits[label] is read before pass 2.
//   ignore_index rows: loss 0, correct 0, dlogits 0. A label outside [0, V) (not ignore_index) cannot
//   throw from the device: that row gets loss NaN, correct 0 and NaN dlogits, and the error is recorded
//   for the next synchronize to throw (common.cuh, LbDeviceError).
#include "common.cuh"

namespace lb {
namespace {

constexpr int kThreads = 512;

template <typename T>
__global__ void softmax_xent_kernel(const T* logits, const int32_t* labels, float* losses, int32_t* correct,
                                    T* dlogits, int V, int64_t ld, int ignore_index, float grad_scale,
                                    LbDeviceError* err) {
  // logits, dlogits (N, V) row stride ld; labels, losses, correct (N)
  __shared__ float s_m[kThreads], s_s[kThreads], s_bv[kThreads];
  __shared__ int s_bi[kThreads];
  __shared__ float s_label_logit;
  const int row = blockIdx.x, tid = threadIdx.x;
  const T* x = logits + (size_t)row * ld;
  const int label = labels[row];
  if (label == ignore_index) {
    if (tid == 0) {
      losses[row] = 0.0f;
      if (correct) correct[row] = 0;
    }
    if (dlogits)
      for (int i = tid; i < V; i += blockDim.x) lb_st(dlogits + (size_t)row * ld + i, 0.0f);
    return;
  }
  const bool valid = label >= 0 && label < V;
  if (tid == 0) {
    s_label_logit = valid ? lb_ld(x + label) : NAN;
    if (!valid) lb_report_index_error(err, OpId::softmax_xent, kWhatLabels, row, label, V);
  }
  LbSoftmaxState st = lb_softmax_init();
  float bv = -INFINITY;
  int bi = V;  // lowest index of the maximum
  for (int i = tid; i < V; i += blockDim.x) {
    const float v = lb_ld(x + i);
    st = lb_softmax_push(st, v);
    if (v > bv) { bv = v; bi = i; }  // strided ascending: the first hit is this thread's lowest index
  }
  s_m[tid] = st.m; s_s[tid] = st.s; s_bv[tid] = bv; s_bi[tid] = bi;
  __syncthreads();
  for (int w = blockDim.x / 2; w > 0; w >>= 1) {
    if (tid < w) {
      const LbSoftmaxState c = lb_softmax_combine(LbSoftmaxState{s_m[tid], s_s[tid]}, LbSoftmaxState{s_m[tid + w], s_s[tid + w]});
      s_m[tid] = c.m; s_s[tid] = c.s;
      const float ov = s_bv[tid + w];
      const int oi = s_bi[tid + w];
      if (ov > s_bv[tid] || (ov == s_bv[tid] && oi < s_bi[tid])) { s_bv[tid] = ov; s_bi[tid] = oi; }
    }
    __syncthreads();
  }
  const float lse = lb_softmax_lse(LbSoftmaxState{s_m[0], s_s[0]});
  if (tid == 0) {
    losses[row] = valid ? lse - s_label_logit : NAN;
    if (correct) correct[row] = valid && s_bi[0] == label ? 1 : 0;
  }
  if (!dlogits) return;
  T* dx = dlogits + (size_t)row * ld;
  for (int i = tid; i < V; i += blockDim.x) {
    float g = valid ? expf(lb_ld(x + i) - lse) : NAN;
    if (i == label) g -= 1.0f;
    lb_st(dx + i, g * grad_scale);
  }
}

}  // namespace

void softmax_xent_forward_cuda(const SoftmaxXentParams& p) {
  if (p.N <= 0) return;
  LB_FLOAT_DISPATCH("softmax_xent", p.dtype, T,
                    softmax_xent_kernel<T><<<p.N, kThreads, 0, cuda_stream()>>>(
                        (const T*)p.logits, p.labels, p.losses, p.correct, (T*)p.dlogits, p.V, p.ld, p.ignore_index,
                        p.grad_scale, cuda_error_slot()));
  lb_check_launch("softmax_xent");
}

}  // namespace lb
