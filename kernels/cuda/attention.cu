// attention.cu: non-causal multi-head attention with a key padding mask, dropout on the probabilities,
// never materialising T x T (ops.h AttentionParams).
//   q, k, v, out, dout, dq, dk, dv: (B, T, NH, D); lse, delta: (B, NH, T) f32; key_mask (B, T) i32.
//   q, k, v, dq, dk, dv have rows ld_qkv apart (slices of one fused QKV array when ld_qkv = 3 NH D).
//   Dropout keeps (b,h,i,j) iff lb_dropout_keep(seed, offset + ((b*NH + h)*T + i)*T + j, p), scaled by 1/(1-p).
//
// Tensor-core path (bf16, D = 64 or 128, 16-byte aligned tensors, sm_80+): FlashAttention-2 style.
//   forward: one block = 64 queries (4 warps x 16 rows), key/value tiles of 64 rows double-buffered with
//   cp.async into XOR-swizzled shared memory; S = Q K^T and O += P V on mma.sync m16n8k16 (f32
//   accumulators), online softmax in registers (base-2 exponent), P re-packed from the accumulator
//   layout straight into A fragments (as a bf16 hi + lo pair, see fa_pv). lse saved per row.
//   backward: delta = rowsum(dout * out), then two kernels that never write the same element twice
//   (deterministic, no atomics): dq per 64-query block looping over the keys, dk/dv per 64-key block
//   looping over the queries; each recomputes P from lse (FA2's recompute, paid twice for determinism).
// Generic path (f32, other D, unaligned tensors, any D up to 1024; the tiny golden model uses D = 16/32): one warp per query row for
// the forward and dq, one warp per key row for dk/dv, online softmax, D spread over the lanes.
// Deterministic (no atomics): every output element is owned by one warp that loops in a fixed order.
// Backward (activation grads, =):  P = exp(s - lse), dP = (dout . v_j) * Z, dS = P (dP - delta),
//   delta_i = rowsum(dout_i * out_i), dq = scale dS K, dk = scale dS^T Q, dv = (P Z)^T dout.
#include "common.cuh"
#include "mma.cuh"

namespace lb {
namespace {

constexpr int kMaxDPerLane = 32;  // D <= 1024
constexpr int kWarps = 4;

struct AttnGeo {
  int B, T, NH, D;
  int64_t ld;  // ld_qkv
  float scale, p_drop, inv_keep;
  uint64_t seed, offset;
  // element offset of row t of head h in batch b, in out or dout (B,T,NH,D)
  __device__ __forceinline__ size_t row(int b, int t, int h) const { return (((size_t)b * T + t) * NH + h) * D; }
  // the same in q, k, v, dq, dk, dv (rows ld apart)
  __device__ __forceinline__ size_t xrow(int b, int t, int h) const { return ((size_t)b * T + t) * ld + (size_t)h * D; }
  __device__ __forceinline__ bool keep(int b, int h, int i, int j) const {
    return p_drop <= 0.0f || lb_dropout_keep(seed, offset + (((uint64_t)b * NH + h) * T + i) * T + j, p_drop);
  }
  // keep(b, h, i, j) and keep(b, h, i, j + 1) with one Philox evaluation when the first counter is even
  // (lb_uniform2); callers check p_drop > 0.
  __device__ __forceinline__ void keep2(int b, int h, int i, int j, bool k[2]) const {
    const uint64_t c = offset + (((uint64_t)b * NH + h) * T + i) * T + j;
    float u[2];
    if (c & 1) {
      u[0] = lb_uniform(seed, c);
      u[1] = lb_uniform(seed, c + 1);
    } else {
      lb_uniform2(seed, c, u);
    }
    k[0] = u[0] >= p_drop;
    k[1] = u[1] >= p_drop;
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
  const size_t qo = g.xrow(b, i, h), oo = g.row(b, i, h);
#pragma unroll
  for (int e = 0; e < DPL; e++) {
    const int d = lane + 32 * e;
    qr[e] = d < g.D ? lb_ld(q + qo + d) * g.scale : 0.0f;
    acc[e] = 0.0f;
  }
  LbSoftmaxState st = lb_softmax_init();
  for (int j = 0; j < g.T; j++) {
    if (mask && mask[(size_t)b * g.T + j] == 0) continue;
    const size_t ko = g.xrow(b, j, h);
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
    if (d < g.D) lb_st(out + oo + d, acc[e] * inv);
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
  const size_t qo = g.xrow(b, i, h), oo = g.row(b, i, h);
  const float L = lse[gw], dl = delta[gw];
  float qr[DPL], dor[DPL], acc[DPL];
#pragma unroll
  for (int e = 0; e < DPL; e++) {
    const int d = lane + 32 * e;
    qr[e] = d < g.D ? lb_ld(q + qo + d) * g.scale : 0.0f;
    dor[e] = d < g.D ? lb_ld(dout + oo + d) : 0.0f;
    acc[e] = 0.0f;
  }
  if (L != -INFINITY) {
    for (int j = 0; j < g.T; j++) {
      if (mask && mask[(size_t)b * g.T + j] == 0) continue;
      const size_t ko = g.xrow(b, j, h);
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
  const size_t ko = g.xrow(b, j, h);
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
    const size_t qo = g.xrow(b, i, h), oo = g.row(b, i, h);
    float s = 0.0f, dp = 0.0f;
#pragma unroll
    for (int e = 0; e < DPL; e++) {
      const int d = lane + 32 * e;
      if (d < g.D) {
        s = fmaf(lb_ld(q + qo + d) * g.scale, kr[e], s);
        dp = fmaf(lb_ld(dout + oo + d), vr[e], dp);
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
        av[e] = fmaf(pz, lb_ld(dout + oo + d), av[e]);
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
  g.ld = p.ld_qkv;
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

// ------------------------------------------------------------------------------------------------
// Tensor-core (FlashAttention-2 style) path: bf16, D in {64, 128}.
constexpr int kFaRows = 64;      // query rows per block (fwd, dq) / key rows per block (dk, dv)
constexpr int kFaThreads = 128;  // 4 warps x 16 rows
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// A [rows][D] bf16 tile in shared memory: rows of D/8 16-byte chunks, chunk XOR (row & 7) so the 8 rows
// of an ldmatrix phase (plain or .trans) fall in 8 different bank groups.
template <int D>
__device__ __forceinline__ uint32_t fa_off(int r, int c) {
  return (uint32_t)((r * (D / 8) + (c ^ (r & 7))) * 16);
}

// rows [r0, r0 + ROWS) of one (b, h) slice: element (t, d) at g + t * rs + d; rows >= T are zero-filled.
template <int D, int ROWS>
__device__ __forceinline__ void fa_load(uint32_t sbase, const bf16_t* g, size_t rs, int r0, int T, int tid) {
  constexpr int CH = D / 8;
#pragma unroll
  for (int id = tid; id < ROWS * CH; id += kFaThreads) {
    const int r = id / CH, c = id % CH;
    const bool ok = r0 + r < T;
    lb_cp_async16(sbase + fa_off<D>(r, c), ok ? g + (size_t)(r0 + r) * rs + c * 8 : g, ok ? 16 : 0);
  }
}

// acc[2nj], acc[2nj+1] += A(16 x D, fragments from a [row][d] tile at rows a_row0..) * B^T where B is a
// [n][d] tile (rows n_row0 + 0..15): i.e. S-type products Q K^T, dO V^T, K Q^T, V dO^T.
template <int D, int NT>
__device__ __forceinline__ void fa_qkt(float (&acc)[NT][4], uint32_t sa, int a_row0, uint32_t sb, int lane) {
  const int idx = lane >> 3, r = lane & 7;
#pragma unroll
  for (int kk = 0; kk < D / 16; kk++) {
    uint32_t af[4];
    lb_ldmatrix_x4(af, sa + fa_off<D>(a_row0 + (lane & 15), kk * 2 + (lane >> 4)));
#pragma unroll
    for (int nj = 0; nj < NT / 2; nj++) {
      uint32_t bb[4];
      lb_ldmatrix_x4(bb, sb + fa_off<D>(nj * 16 + r + (idx >> 1) * 8, kk * 2 + (idx & 1)));
      lb_mma_bf16(acc[2 * nj], af, bb[0], bb[1]);
      lb_mma_bf16(acc[2 * nj + 1], af, bb[2], bb[3]);
    }
  }
}

// acc (16 x D, D/8 n-tiles) += P (16 x 16*KT, accumulator layout, packed here to bf16 A fragments) @ V
// where V is a [k][d] tile (rows 0..16*KT-1): the P V, dS K, P^T dO, dS^T Q products.
// P is an f32 intermediate: rounding it to one bf16 would add an error as large as the bf16 rounding of
// the output itself (the op table allows about that much in total), so it goes in as hi + lo, two bf16
// parts (~16 mantissa bits), at the price of a second mma per fragment. V / K / Q / dO are bf16 inputs,
// exact in the fragments.
__device__ __forceinline__ float fa_bf16_round(float x) { return lb_bf16_to_f32(lb_f32_to_bf16(x)); }

template <int D, int KT>
__device__ __forceinline__ void fa_pv(float (&acc)[D / 8][4], const float (&p)[2 * KT][4], uint32_t sv, int lane) {
  const int idx = lane >> 3, r = lane & 7;
#pragma unroll
  for (int kk = 0; kk < KT; kk++) {
    const float* p0 = p[2 * kk];
    const float* p1 = p[2 * kk + 1];
    const uint32_t hi[4] = {lb_pack_bf16x2(p0[0], p0[1]), lb_pack_bf16x2(p0[2], p0[3]), lb_pack_bf16x2(p1[0], p1[1]),
                            lb_pack_bf16x2(p1[2], p1[3])};
    const uint32_t lo[4] = {lb_pack_bf16x2(p0[0] - fa_bf16_round(p0[0]), p0[1] - fa_bf16_round(p0[1])),
                            lb_pack_bf16x2(p0[2] - fa_bf16_round(p0[2]), p0[3] - fa_bf16_round(p0[3])),
                            lb_pack_bf16x2(p1[0] - fa_bf16_round(p1[0]), p1[1] - fa_bf16_round(p1[1])),
                            lb_pack_bf16x2(p1[2] - fa_bf16_round(p1[2]), p1[3] - fa_bf16_round(p1[3]))};
#pragma unroll
    for (int dj = 0; dj < D / 16; dj++) {
      uint32_t bb[4];
      lb_ldmatrix_x4_trans(bb, sv + fa_off<D>(kk * 16 + r + (idx & 1) * 8, dj * 2 + (idx >> 1)));
      lb_mma_bf16(acc[2 * dj], hi, bb[0], bb[1]);
      lb_mma_bf16(acc[2 * dj + 1], hi, bb[2], bb[3]);
      lb_mma_bf16(acc[2 * dj], lo, bb[0], bb[1]);
      lb_mma_bf16(acc[2 * dj + 1], lo, bb[2], bb[3]);
    }
  }
}

// Stores a 16 x D accumulator (rows row0 + g, row0 + g + 8) scaled by s0 / s1 as bf16; rows >= T skipped.
template <int D>
__device__ __forceinline__ void fa_store(bf16_t* g, size_t rs, int row0, int T, const float (&acc)[D / 8][4],
                                         float s0, float s1, int lane) {
  const int gr = lane >> 2, t = lane & 3;
#pragma unroll
  for (int dn = 0; dn < D / 8; dn++) {
    const int col = dn * 8 + 2 * t;
    if (row0 + gr < T)
      *reinterpret_cast<uint32_t*>(g + (size_t)(row0 + gr) * rs + col) = lb_pack_bf16x2(acc[dn][0] * s0, acc[dn][1] * s0);
    if (row0 + gr + 8 < T)
      *reinterpret_cast<uint32_t*>(g + (size_t)(row0 + gr + 8) * rs + col) =
          lb_pack_bf16x2(acc[dn][2] * s1, acc[dn][3] * s1);
  }
}

// Attention dropout on a 16 x 64 mma tile held as v[8][4]: query rows row, row + 8 (registers 0-1 and
// 2-3), key pairs col0 + 8 ni + {0, 1}. v *= keep ? inv_keep : 0 with one Philox evaluation per key pair
// (keep2); callers test p_drop > 0 once, outside.
__device__ __forceinline__ void fa_dropout_tile(float (&v)[8][4], const AttnGeo& g, int b, int h, int row, int col0) {
#pragma unroll
  for (int ni = 0; ni < 8; ni++)
#pragma unroll
    for (int rr = 0; rr < 2; rr++) {
      bool kp[2];
      g.keep2(b, h, row + rr * 8, col0 + ni * 8, kp);
#pragma unroll
      for (int c = 0; c < 2; c++) v[ni][2 * rr + c] *= kp[c] ? g.inv_keep : 0.0f;
    }
}
__device__ __forceinline__ bool fa_key_live(const int32_t* mask, int b, int T, int j) {
  return j < T && (!mask || mask[(size_t)b * T + j] != 0);
}

template <int D>
__global__ void __launch_bounds__(kFaThreads) fa_fwd_kernel(const bf16_t* q, const bf16_t* k, const bf16_t* v,
                                                            bf16_t* out, float* lse, const int32_t* mask, AttnGeo g) {
  // q, k, v, out (B,T,NH,D) bf16; lse (B,NH,T); mask (B,T). grid (query blocks, B*NH)
  constexpr int TILE = kFaRows * D * 2;
  extern __shared__ __align__(128) unsigned char smem[];  // Q | K[2] | V[2]
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, gr = lane >> 2, t = lane & 3;
  const int bh = blockIdx.y, h = bh % g.NH, b = bh / g.NH;
  const size_t rs = (size_t)g.NH * D, slice = ((size_t)b * g.T * g.NH + h) * D;  // out, dout
  const size_t xrs = (size_t)g.ld, xslice = (size_t)b * g.T * xrs + (size_t)h * D;  // q, k, v, dq, dk, dv
  const uint32_t sq = lb_smem_addr(smem), sk = sq + TILE, sv = sk + 2 * TILE;
  const int i0 = blockIdx.x * kFaRows;
  fa_load<D, kFaRows>(sq, q + xslice, xrs, i0, g.T, tid);
  fa_load<D, kFaRows>(sk, k + xslice, xrs, 0, g.T, tid);
  fa_load<D, kFaRows>(sv, v + xslice, xrs, 0, g.T, tid);
  lb_cp_async_commit();
  const int nkb = (g.T + kFaRows - 1) / kFaRows;
  const float sl2 = g.scale * kLog2e;
  const int row0 = i0 + warp * 16;  // this warp's rows: row0 + gr, row0 + gr + 8
  float o[D / 8][4] = {};
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
  for (int jb = 0; jb < nkb; jb++) {
    const uint32_t kb = sk + (jb & 1) * TILE, vb = sv + (jb & 1) * TILE;
    if (jb + 1 < nkb) {  // the other buffer was released by the barrier that ended iteration jb-1
      fa_load<D, kFaRows>(sk + ((jb + 1) & 1) * TILE, k + xslice, xrs, (jb + 1) * kFaRows, g.T, tid);
      fa_load<D, kFaRows>(sv + ((jb + 1) & 1) * TILE, v + xslice, xrs, (jb + 1) * kFaRows, g.T, tid);
    }
    lb_cp_async_commit();
    lb_cp_async_wait<1>();
    __syncthreads();
    float s[8][4] = {};
    fa_qkt<D, 8>(s, sq, warp * 16, kb, lane);
    float mx[2] = {m[0], m[1]};
#pragma unroll
    for (int ni = 0; ni < 8; ni++)
#pragma unroll
      for (int r = 0; r < 4; r++) {
        const int j = jb * kFaRows + ni * 8 + 2 * t + (r & 1);
        s[ni][r] = fa_key_live(mask, b, g.T, j) ? s[ni][r] * sl2 : -INFINITY;
        mx[r >> 1] = fmaxf(mx[r >> 1], s[ni][r]);
      }
    float mu[2], corr[2];
#pragma unroll
    for (int rr = 0; rr < 2; rr++) {
      mx[rr] = fmaxf(mx[rr], __shfl_xor_sync(0xffffffffu, mx[rr], 1));
      mx[rr] = fmaxf(mx[rr], __shfl_xor_sync(0xffffffffu, mx[rr], 2));
      mu[rr] = mx[rr] == -INFINITY ? 0.0f : mx[rr];  // nothing live yet: keep exp2 away from inf - inf
      corr[rr] = exp2f(m[rr] - mu[rr]);
      m[rr] = mx[rr];
      l[rr] *= corr[rr];
    }
#pragma unroll
    for (int ni = 0; ni < 8; ni++)
#pragma unroll
      for (int r = 0; r < 4; r++) {
        const float pv = exp2f(s[ni][r] - mu[r >> 1]);
        l[r >> 1] += pv;  // the softmax denominator never sees dropout
        s[ni][r] = pv;
      }
    // dropout as its own pass under one uniform branch, so the loop above stays straight-line code
    if (g.p_drop > 0.0f) fa_dropout_tile(s, g, b, h, row0 + gr, jb * kFaRows + 2 * t);
#pragma unroll
    for (int dn = 0; dn < D / 8; dn++) {
      o[dn][0] *= corr[0]; o[dn][1] *= corr[0];
      o[dn][2] *= corr[1]; o[dn][3] *= corr[1];
    }
    fa_pv<D, 4>(o, s, vb, lane);
    __syncthreads();  // every warp is done with this K/V buffer before it is refilled
  }
  lb_cp_async_wait<0>();
#pragma unroll
  for (int rr = 0; rr < 2; rr++) {
    l[rr] += __shfl_xor_sync(0xffffffffu, l[rr], 1);
    l[rr] += __shfl_xor_sync(0xffffffffu, l[rr], 2);
  }
  // all keys padded: out = 0, lse = -inf (ops.h)
  fa_store<D>(out + slice, rs, row0, g.T, o, l[0] > 0.0f ? 1.0f / l[0] : 0.0f, l[1] > 0.0f ? 1.0f / l[1] : 0.0f, lane);
  if (t == 0) {
    float* lrow = lse + (size_t)bh * g.T;
#pragma unroll
    for (int rr = 0; rr < 2; rr++) {
      const int i = row0 + gr + rr * 8;
      if (i < g.T) lrow[i] = l[rr] > 0.0f ? (m[rr] + log2f(l[rr])) * kLn2 : -INFINITY;
    }
  }
}

// dq (=) for 64 queries per block: loops over all key blocks; P recomputed from lse.
template <int D>
__global__ void __launch_bounds__(kFaThreads) fa_bwd_dq_kernel(const bf16_t* q, const bf16_t* k, const bf16_t* v,
                                                               const bf16_t* dout, const float* lse,
                                                               const float* delta, const int32_t* mask, bf16_t* dq,
                                                               AttnGeo g) {
  // q, k, v, dout, dq (B,T,NH,D); lse, delta (B,NH,T); grid (query blocks, B*NH)
  constexpr int TILE = kFaRows * D * 2;
  extern __shared__ __align__(128) unsigned char smem[];  // Q | dO | K[2] | V[2]
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, gr = lane >> 2, t = lane & 3;
  const int bh = blockIdx.y, h = bh % g.NH, b = bh / g.NH;
  const size_t rs = (size_t)g.NH * D, slice = ((size_t)b * g.T * g.NH + h) * D;  // out, dout
  const size_t xrs = (size_t)g.ld, xslice = (size_t)b * g.T * xrs + (size_t)h * D;  // q, k, v, dq, dk, dv
  const uint32_t sq = lb_smem_addr(smem), sdo = sq + TILE, sk = sdo + TILE, sv = sk + 2 * TILE;
  const int i0 = blockIdx.x * kFaRows, row0 = i0 + warp * 16;
  fa_load<D, kFaRows>(sq, q + xslice, xrs, i0, g.T, tid);
  fa_load<D, kFaRows>(sdo, dout + slice, rs, i0, g.T, tid);
  fa_load<D, kFaRows>(sk, k + xslice, xrs, 0, g.T, tid);
  fa_load<D, kFaRows>(sv, v + xslice, xrs, 0, g.T, tid);
  lb_cp_async_commit();
  const float sl2 = g.scale * kLog2e;
  float L2[2], dl[2];  // lse in log2 units, delta, for rows gr and gr + 8
#pragma unroll
  for (int rr = 0; rr < 2; rr++) {
    const int i = row0 + gr + rr * 8;
    const float L = i < g.T ? lse[(size_t)bh * g.T + i] : -INFINITY;
    L2[rr] = L * kLog2e;
    dl[rr] = i < g.T ? delta[(size_t)bh * g.T + i] : 0.0f;
  }
  const int nkb = (g.T + kFaRows - 1) / kFaRows;
  float acc[D / 8][4] = {};
  for (int jb = 0; jb < nkb; jb++) {
    const uint32_t kb = sk + (jb & 1) * TILE, vb = sv + (jb & 1) * TILE;
    if (jb + 1 < nkb) {
      fa_load<D, kFaRows>(sk + ((jb + 1) & 1) * TILE, k + xslice, xrs, (jb + 1) * kFaRows, g.T, tid);
      fa_load<D, kFaRows>(sv + ((jb + 1) & 1) * TILE, v + xslice, xrs, (jb + 1) * kFaRows, g.T, tid);
    }
    lb_cp_async_commit();
    lb_cp_async_wait<1>();
    __syncthreads();
    float s[8][4] = {}, dp[8][4] = {};
    fa_qkt<D, 8>(s, sq, warp * 16, kb, lane);
    fa_qkt<D, 8>(dp, sdo, warp * 16, vb, lane);
    if (g.p_drop > 0.0f) fa_dropout_tile(dp, g, b, h, row0 + gr, jb * kFaRows + 2 * t);  // dP Z first, under one uniform branch
#pragma unroll
    for (int ni = 0; ni < 8; ni++)
#pragma unroll
      for (int r = 0; r < 4; r++) {
        const int rr = r >> 1, j = jb * kFaRows + ni * 8 + 2 * t + (r & 1);
        const bool live = L2[rr] != -INFINITY && fa_key_live(mask, b, g.T, j);
        const float pv = live ? exp2f(s[ni][r] * sl2 - L2[rr]) : 0.0f;
        s[ni][r] = pv * (dp[ni][r] - dl[rr]);  // dS
      }
    fa_pv<D, 4>(acc, s, kb, lane);  // dq += dS K
    __syncthreads();
  }
  lb_cp_async_wait<0>();
  fa_store<D>(dq + xslice, xrs, row0, g.T, acc, g.scale, g.scale, lane);
}

// dk, dv (=) for 64 keys per block: loops over the queries in tiles of BQ; P^T recomputed from lse.
template <int D, int BQ>
__global__ void __launch_bounds__(kFaThreads) fa_bwd_dkv_kernel(const bf16_t* q, const bf16_t* k, const bf16_t* v,
                                                                const bf16_t* dout, const float* lse,
                                                                const float* delta, const int32_t* mask, bf16_t* dk,
                                                                bf16_t* dv, AttnGeo g) {
  // q, k, v, dout, dk, dv (B,T,NH,D); lse, delta (B,NH,T); grid (key blocks, B*NH)
  constexpr int TILE = kFaRows * D * 2, QTILE = BQ * D * 2, NT = BQ / 8;
  extern __shared__ __align__(128) unsigned char smem[];  // K | V | Q[2] | dO[2]
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, gr = lane >> 2, t = lane & 3;
  const int bh = blockIdx.y, h = bh % g.NH, b = bh / g.NH;
  const size_t rs = (size_t)g.NH * D, slice = ((size_t)b * g.T * g.NH + h) * D;  // out, dout
  const size_t xrs = (size_t)g.ld, xslice = (size_t)b * g.T * xrs + (size_t)h * D;  // q, k, v, dq, dk, dv
  const uint32_t sk = lb_smem_addr(smem), sv = sk + TILE, sq = sv + TILE, sdo = sq + 2 * QTILE;
  const int j0 = blockIdx.x * kFaRows, krow0 = j0 + warp * 16;  // this warp's keys: krow0 + gr (+8)
  fa_load<D, kFaRows>(sk, k + xslice, xrs, j0, g.T, tid);
  fa_load<D, kFaRows>(sv, v + xslice, xrs, j0, g.T, tid);
  fa_load<D, BQ>(sq, q + xslice, xrs, 0, g.T, tid);
  fa_load<D, BQ>(sdo, dout + slice, rs, 0, g.T, tid);
  lb_cp_async_commit();
  const float sl2 = g.scale * kLog2e;
  bool klive[2];
#pragma unroll
  for (int rr = 0; rr < 2; rr++) klive[rr] = fa_key_live(mask, b, g.T, krow0 + gr + rr * 8);
  const float* lse_bh = lse + (size_t)bh * g.T;
  const float* delta_bh = delta + (size_t)bh * g.T;
  const int nqb = (g.T + BQ - 1) / BQ;
  float adk[D / 8][4] = {}, adv[D / 8][4] = {};
  for (int ib = 0; ib < nqb; ib++) {
    const uint32_t qb = sq + (ib & 1) * QTILE, dob = sdo + (ib & 1) * QTILE;
    if (ib + 1 < nqb) {
      fa_load<D, BQ>(sq + ((ib + 1) & 1) * QTILE, q + xslice, xrs, (ib + 1) * BQ, g.T, tid);
      fa_load<D, BQ>(sdo + ((ib + 1) & 1) * QTILE, dout + slice, rs, (ib + 1) * BQ, g.T, tid);
    }
    lb_cp_async_commit();
    lb_cp_async_wait<1>();
    __syncthreads();
    float s[NT][4] = {}, dp[NT][4] = {};
    fa_qkt<D, NT>(s, sk, warp * 16, qb, lane);   // S^T = K Q^T   (keys x queries)
    fa_qkt<D, NT>(dp, sv, warp * 16, dob, lane); // dP^T = V dO^T
#pragma unroll
    for (int ni = 0; ni < NT; ni++)
#pragma unroll
      for (int c = 0; c < 2; c++) {
        const int i = ib * BQ + ni * 8 + 2 * t + c;  // query (column)
        const float L = i < g.T ? lse_bh[i] : -INFINITY;
        const float dli = i < g.T ? delta_bh[i] : 0.0f;
#pragma unroll
        for (int rr = 0; rr < 2; rr++) {
          // dropout stays inline here: a separate pass (as in the other two kernels) keeps S and dP live
          // across all the Philox evaluations and spills at D = 64
          const int r = rr * 2 + c, j = krow0 + gr + rr * 8;
          const bool live = klive[rr] && L != -INFINITY;
          const float pv = live ? exp2f(s[ni][r] * sl2 - L * kLog2e) : 0.0f;
          const float z = g.p_drop > 0.0f ? (g.keep(b, h, i, j) ? g.inv_keep : 0.0f) : 1.0f;
          s[ni][r] = pv * (dp[ni][r] * z - dli);  // dS^T
          dp[ni][r] = pv * z;                     // (P Z)^T
        }
      }
    fa_pv<D, NT / 2>(adv, dp, dob, lane);  // dV += (P Z)^T dO
    fa_pv<D, NT / 2>(adk, s, qb, lane);    // dK += dS^T Q
    __syncthreads();
  }
  lb_cp_async_wait<0>();
  fa_store<D>(dk + xslice, xrs, krow0, g.T, adk, g.scale, g.scale, lane);
  fa_store<D>(dv + xslice, xrs, krow0, g.T, adv, 1.0f, 1.0f, lane);
}

template <typename K>
void fa_set_smem(K kernel, int bytes) {
  if (bytes > 48 * 1024) lb_set_max_smem((const void*)kernel, bytes, "attention");
}

template <int D>
void fa_forward(const AttentionParams& p, const AttnGeo& g) {
  const int smem = 5 * kFaRows * D * 2;
  fa_set_smem(fa_fwd_kernel<D>, smem);
  const dim3 grid((p.T + kFaRows - 1) / kFaRows, p.B * p.NH);
  fa_fwd_kernel<D><<<grid, kFaThreads, smem, cuda_stream()>>>((const bf16_t*)p.q, (const bf16_t*)p.k,
                                                             (const bf16_t*)p.v, (bf16_t*)p.out, p.lse, p.key_mask, g);
  lb_check_launch("attention");
}

template <int D>
void fa_backward(const AttentionParams& p, const AttnGeo& g) {
  constexpr int BQ = D == 128 ? 32 : 64;  // fewer S/dP registers next to the dK, dV accumulators
  const dim3 grid((p.T + kFaRows - 1) / kFaRows, p.B * p.NH);
  const int smem_dq = 6 * kFaRows * D * 2;
  fa_set_smem(fa_bwd_dq_kernel<D>, smem_dq);
  fa_bwd_dq_kernel<D><<<grid, kFaThreads, smem_dq, cuda_stream()>>>(
      (const bf16_t*)p.q, (const bf16_t*)p.k, (const bf16_t*)p.v, (const bf16_t*)p.dout, p.lse, p.delta, p.key_mask,
      (bf16_t*)p.dq, g);
  lb_check_launch("attention");
  const int smem_dkv = 2 * kFaRows * D * 2 + 4 * BQ * D * 2;
  fa_set_smem(fa_bwd_dkv_kernel<D, BQ>, smem_dkv);
  fa_bwd_dkv_kernel<D, BQ><<<grid, kFaThreads, smem_dkv, cuda_stream()>>>(
      (const bf16_t*)p.q, (const bf16_t*)p.k, (const bf16_t*)p.v, (const bf16_t*)p.dout, p.lse, p.delta, p.key_mask,
      (bf16_t*)p.dk, (bf16_t*)p.dv, g);
  lb_check_launch("attention");
}

bool fa_eligible(const AttentionParams& p, bool backward) {
  auto al = [](const void* x) { return ((uintptr_t)x & 15) == 0; };
  bool ok = p.dtype == DType::BF16 && (p.D == 64 || p.D == 128) && cuda_props().major >= 8 &&
            (int64_t)p.B * p.NH <= 65535 && p.ld_qkv % 8 == 0 && al(p.q) && al(p.k) && al(p.v) && al(p.out);
  if (backward) ok = ok && al(p.dout) && al(p.dq) && al(p.dk) && al(p.dv);
  return ok;
}

}  // namespace

void attention_forward_cuda(const AttentionParams& p) {
  check_d(p);
  const AttnGeo g = make_geo(p);
  const int64_t rows = (int64_t)p.B * p.NH * p.T;
  if (rows <= 0) return;
  if (fa_eligible(p, false)) {
    if (p.D == 64) fa_forward<64>(p, g);
    else fa_forward<128>(p, g);
    return;
  }
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
    if (fa_eligible(p, true)) {
      if (p.D == 64) fa_backward<64>(p, g);
      else fa_backward<128>(p, g);
      return;
    }
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
