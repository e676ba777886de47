// attention.cu: non-causal multi-head attention with a key padding mask, dropout on the probabilities,
// never materialising T x T (ops.h AttentionParams).
//   q, k, v, out, dout, dq, dk, dv: (B, T, NH, D); lse, delta: (B, NH, T) f32; key_mask (B, T) i32.
//   Dropout keeps (b,h,i,j) iff lb_dropout_keep(seed, offset + ((b*NH + h)*T + i)*T + j, p), scaled by 1/(1-p).
//
// Generic path (any D up to 1024; the tiny golden model uses D = 16/32): one warp per query row for
// the forward and dq, one warp per key row for dk/dv, online softmax, D spread over the lanes.
// Deterministic (no atomics): every output element is owned by one warp that loops in a fixed order.
// Backward (activation grads, =):  P = exp(s - lse), dP = (dout . v_j) * Z, dS = P (dP - delta),
//   delta_i = rowsum(dout_i * out_i), dq = scale dS K, dk = scale dS^T Q, dv = (P Z)^T dout.
#include "common.cuh"

namespace lb {
namespace {

constexpr int kMaxDPerLane = 32;  // D <= 1024
constexpr int kWarps = 4;

struct AttnGeo {
  int B, T, NH, D;
  float scale, p_drop, inv_keep;
  uint64_t seed, offset;
  // element offset of row t of head h in batch b, in a (B,T,NH,D) tensor
  __device__ __forceinline__ size_t row(int b, int t, int h) const { return (((size_t)b * T + t) * NH + h) * D; }
  __device__ __forceinline__ bool keep(int b, int h, int i, int j) const {
    return p_drop <= 0.0f || lb_dropout_keep(seed, offset + (((uint64_t)b * NH + h) * T + i) * T + j, p_drop);
  }
};

template <typename T, int DPL>
__global__ void attn_fwd_generic(const T* q, const T* k, const T* v, T* out, float* lse, const int32_t* mask,
                                 AttnGeo g) {
  const int lane = threadIdx.x & 31;
  const int64_t gw = blockIdx.x * (int64_t)kWarps + (threadIdx.x >> 5);  // (b, h, i)
  if (gw >= (int64_t)g.B * g.NH * g.T) return;
  const int i = (int)(gw % g.T), h = (int)((gw / g.T) % g.NH), b = (int)(gw / ((int64_t)g.T * g.NH));
  float qr[DPL], acc[DPL];
  const size_t qo = g.row(b, i, h);
#pragma unroll
  for (int e = 0; e < DPL; e++) {
    const int d = lane + 32 * e;
    qr[e] = d < g.D ? lb_ld(q + qo + d) * g.scale : 0.0f;
    acc[e] = 0.0f;
  }
  LbSoftmaxState st = lb_softmax_init();
  for (int j = 0; j < g.T; j++) {
    if (mask && mask[(size_t)b * g.T + j] == 0) continue;
    const size_t ko = g.row(b, j, h);
    float s = 0.0f;
#pragma unroll
    for (int e = 0; e < DPL; e++) {
      const int d = lane + 32 * e;
      if (d < g.D) s = fmaf(qr[e], lb_ld(k + ko + d), s);
    }
    s = lb_warp_sum(s);
    const LbSoftmaxState nst = lb_softmax_push(st, s);
    const float corr = expf(st.m - nst.m);  // rescale of the running numerator (0 on the first key)
    const float pj = expf(s - nst.m) * (g.keep(b, h, i, j) ? g.inv_keep : 0.0f);
#pragma unroll
    for (int e = 0; e < DPL; e++) {
      const int d = lane + 32 * e;
      acc[e] = acc[e] * corr + (d < g.D ? pj * lb_ld(v + ko + d) : 0.0f);
    }
    st = nst;
  }
  const float inv = st.s > 0.0f ? 1.0f / st.s : 0.0f;  // all keys padded: out = 0, lse = -inf
#pragma unroll
  for (int e = 0; e < DPL; e++) {
    const int d = lane + 32 * e;
    if (d < g.D) lb_st(out + qo + d, acc[e] * inv);
  }
  if (lane == 0) lse[((size_t)b * g.NH + h) * g.T + i] = lb_softmax_lse(st);
}

// delta (B,NH,T) = rowsum(dout * out); one warp per row.
template <typename T>
__global__ void attn_delta_kernel(const T* dout, const T* out, float* delta, AttnGeo g) {
  const int lane = threadIdx.x & 31;
  const int64_t gw = blockIdx.x * (int64_t)kWarps + (threadIdx.x >> 5);
  if (gw >= (int64_t)g.B * g.NH * g.T) return;
  const int i = (int)(gw % g.T), h = (int)((gw / g.T) % g.NH), b = (int)(gw / ((int64_t)g.T * g.NH));
  const size_t o = g.row(b, i, h);
  float s = 0.0f;
  for (int d = lane; d < g.D; d += 32) s = fmaf(lb_ld(dout + o + d), lb_ld(out + o + d), s);
  s = lb_warp_sum(s);
  if (lane == 0) delta[gw] = s;
}

// dq (=): one warp per query row i.
template <typename T, int DPL>
__global__ void attn_bwd_dq_generic(const T* q, const T* k, const T* v, const T* dout, const float* lse,
                                    const float* delta, const int32_t* mask, T* dq, AttnGeo g) {
  const int lane = threadIdx.x & 31;
  const int64_t gw = blockIdx.x * (int64_t)kWarps + (threadIdx.x >> 5);
  if (gw >= (int64_t)g.B * g.NH * g.T) return;
  const int i = (int)(gw % g.T), h = (int)((gw / g.T) % g.NH), b = (int)(gw / ((int64_t)g.T * g.NH));
  const size_t qo = g.row(b, i, h);
  const float L = lse[gw], dl = delta[gw];
  float qr[DPL], dor[DPL], acc[DPL];
#pragma unroll
  for (int e = 0; e < DPL; e++) {
    const int d = lane + 32 * e;
    qr[e] = d < g.D ? lb_ld(q + qo + d) * g.scale : 0.0f;
    dor[e] = d < g.D ? lb_ld(dout + qo + d) : 0.0f;
    acc[e] = 0.0f;
  }
  if (L != -INFINITY) {
    for (int j = 0; j < g.T; j++) {
      if (mask && mask[(size_t)b * g.T + j] == 0) continue;
      const size_t ko = g.row(b, j, h);
      float s = 0.0f, dp = 0.0f;
#pragma unroll
      for (int e = 0; e < DPL; e++) {
        const int d = lane + 32 * e;
        if (d < g.D) {
          s = fmaf(qr[e], lb_ld(k + ko + d), s);
          dp = fmaf(dor[e], lb_ld(v + ko + d), dp);
        }
      }
      s = lb_warp_sum(s);
      dp = lb_warp_sum(dp);
      const float pij = expf(s - L);
      const float ds = pij * ((g.keep(b, h, i, j) ? dp * g.inv_keep : 0.0f) - dl);
#pragma unroll
      for (int e = 0; e < DPL; e++) {
        const int d = lane + 32 * e;
        if (d < g.D) acc[e] = fmaf(ds, lb_ld(k + ko + d), acc[e]);
      }
    }
  }
#pragma unroll
  for (int e = 0; e < DPL; e++) {
    const int d = lane + 32 * e;
    if (d < g.D) lb_st(dq + qo + d, acc[e] * g.scale);
  }
}

// dk, dv (=): one warp per key row j (masked keys get zero grads).
template <typename T, int DPL>
__global__ void attn_bwd_dkv_generic(const T* q, const T* k, const T* v, const T* dout, const float* lse,
                                     const float* delta, const int32_t* mask, T* dk, T* dv, AttnGeo g) {
  const int lane = threadIdx.x & 31;
  const int64_t gw = blockIdx.x * (int64_t)kWarps + (threadIdx.x >> 5);
  if (gw >= (int64_t)g.B * g.NH * g.T) return;
  const int j = (int)(gw % g.T), h = (int)((gw / g.T) % g.NH), b = (int)(gw / ((int64_t)g.T * g.NH));
  const size_t ko = g.row(b, j, h);
  float kr[DPL], vr[DPL], ak[DPL], av[DPL];
#pragma unroll
  for (int e = 0; e < DPL; e++) {
    const int d = lane + 32 * e;
    kr[e] = d < g.D ? lb_ld(k + ko + d) : 0.0f;
    vr[e] = d < g.D ? lb_ld(v + ko + d) : 0.0f;
    ak[e] = av[e] = 0.0f;
  }
  const bool live = !mask || mask[(size_t)b * g.T + j] != 0;
  const float* lse_bh = lse + ((size_t)b * g.NH + h) * g.T;
  const float* delta_bh = delta + ((size_t)b * g.NH + h) * g.T;
  for (int i = 0; live && i < g.T; i++) {
    const float L = lse_bh[i];
    if (L == -INFINITY) continue;
    const size_t qo = g.row(b, i, h);
    float s = 0.0f, dp = 0.0f;
#pragma unroll
    for (int e = 0; e < DPL; e++) {
      const int d = lane + 32 * e;
      if (d < g.D) {
        s = fmaf(lb_ld(q + qo + d) * g.scale, kr[e], s);
        dp = fmaf(lb_ld(dout + qo + d), vr[e], dp);
      }
    }
    s = lb_warp_sum(s);
    dp = lb_warp_sum(dp);
    const float pij = expf(s - L);
    const float z = g.keep(b, h, i, j) ? g.inv_keep : 0.0f;
    const float ds = pij * (dp * z - delta_bh[i]);
    const float pz = pij * z;
#pragma unroll
    for (int e = 0; e < DPL; e++) {
      const int d = lane + 32 * e;
      if (d < g.D) {
        ak[e] = fmaf(ds, lb_ld(q + qo + d), ak[e]);
        av[e] = fmaf(pz, lb_ld(dout + qo + d), av[e]);
      }
    }
  }
#pragma unroll
  for (int e = 0; e < DPL; e++) {
    const int d = lane + 32 * e;
    if (d < g.D) {
      lb_st(dk + ko + d, ak[e] * g.scale);
      lb_st(dv + ko + d, av[e]);
    }
  }
}

AttnGeo make_geo(const AttentionParams& p) {
  AttnGeo g;
  g.B = p.B; g.T = p.T; g.NH = p.NH; g.D = p.D;
  g.scale = p.scale;
  g.p_drop = p.dropout_p;
  g.inv_keep = p.dropout_p > 0.0f ? 1.0f / (1.0f - p.dropout_p) : 1.0f;
  g.seed = p.seed; g.offset = p.offset;
  return g;
}

// Calls body with DPL = the per-lane register count for D (a few sizes, so registers stay bounded).
#define LB_DPL_DISPATCH(D, DPL, ...)                                  \
  do {                                                                \
    if ((D) <= 32) { constexpr int DPL = 1; __VA_ARGS__; }            \
    else if ((D) <= 64) { constexpr int DPL = 2; __VA_ARGS__; }       \
    else if ((D) <= 128) { constexpr int DPL = 4; __VA_ARGS__; }      \
    else if ((D) <= 256) { constexpr int DPL = 8; __VA_ARGS__; }      \
    else { constexpr int DPL = kMaxDPerLane; __VA_ARGS__; }           \
  } while (0)

void check_d(const AttentionParams& p) {
  if (p.D < 1 || p.D > 32 * kMaxDPerLane)
    throw std::runtime_error("attention: head dim " + std::to_string(p.D) + " is outside [1, 1024]");
}

}  // namespace

void attention_forward_cuda(const AttentionParams& p) {
  check_d(p);
  const AttnGeo g = make_geo(p);
  const int64_t rows = (int64_t)p.B * p.NH * p.T;
  if (rows <= 0) return;
  const unsigned blocks = (unsigned)((rows + kWarps - 1) / kWarps);
  LB_FLOAT_DISPATCH("attention", p.dtype, T, LB_DPL_DISPATCH(p.D, DPL, {
    attn_fwd_generic<T, DPL><<<blocks, kWarps * 32, 0, cuda_stream()>>>((const T*)p.q, (const T*)p.k, (const T*)p.v,
                                                                        (T*)p.out, p.lse, p.key_mask, g);
  }));
  lb_check_launch("attention");
}

void attention_backward_cuda(const AttentionParams& p) {
  check_d(p);
  const AttnGeo g = make_geo(p);
  const int64_t rows = (int64_t)p.B * p.NH * p.T;
  if (rows <= 0) return;
  const unsigned blocks = (unsigned)((rows + kWarps - 1) / kWarps);
  LB_FLOAT_DISPATCH("attention", p.dtype, T, {
    attn_delta_kernel<T><<<blocks, kWarps * 32, 0, cuda_stream()>>>((const T*)p.dout, (const T*)p.out, p.delta, g);
    lb_check_launch("attention");
    LB_DPL_DISPATCH(p.D, DPL, {
      attn_bwd_dq_generic<T, DPL><<<blocks, kWarps * 32, 0, cuda_stream()>>>(
          (const T*)p.q, (const T*)p.k, (const T*)p.v, (const T*)p.dout, p.lse, p.delta, p.key_mask, (T*)p.dq, g);
      lb_check_launch("attention");
      attn_bwd_dkv_generic<T, DPL><<<blocks, kWarps * 32, 0, cuda_stream()>>>(
          (const T*)p.q, (const T*)p.k, (const T*)p.v, (const T*)p.dout, p.lse, p.delta, p.key_mask, (T*)p.dk,
          (T*)p.dv, g);
      lb_check_launch("attention");
    });
  });
}

}  // namespace lb
