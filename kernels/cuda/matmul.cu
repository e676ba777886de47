// matmul.cu: C[b] = alpha * op(A[b]) @ op(B[b]) + beta * C[b] (+ bias) (-> GELU, pre-activation kept),
// and bias_backward (dbias += column sums of dout, deterministic).
//
// Paths:
//   bf16 A/B on sm_80+, 16-byte aligned operands (ld, batch strides multiple of 8 elements):
//     tensor cores, mma.sync m16n8k16 (f32 accumulation); 128x128x32 block tile, 8 warps of 64x32,
//     3-stage cp.async pipeline, XOR-swizzled shared memory read with ldmatrix (.trans for the
//     M/N-contiguous layouts), so all four transpose combinations share one kernel template.
//     Edge tiles: cp.async zero-fills past the matrix, the epilogue masks the stores.
//   bf16 A/B on an sm_90a device (compute capability 9.0 with the sm_90a image loaded), TMA-compatible
//     strides (see lb_sm90_reject in gemm_sm90.h), K >= 1: TMA + wgmma (matmul_sm90.cu), tried first;
//     LINKBERT_CUDA_GEMM=auto|mma|wgmma picks (mma: never wgmma; wgmma: error where it is unavailable).
//   anything else (f32 A/B, or bf16 with unaligned strides / pre-sm_80): SIMT 128x128x8 tile,
//     8x8 outputs per thread, f32 accumulation; K split over several blocks (summed in order by a second
//     kernel) when the output has few tiles and K is long.
// cuda_matmul_last_path() says which of wgmma / mma / simt the last call took (the kernel benchmark).
// Epilogue (every path, matmul_epilogue.cuh): v = alpha*acc (+ beta*C, C read only when beta != 0) (+ bias[n]);
//   BiasGelu stores v into pre_gelu (if non-null) and gelu_erf(v) into C.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "common.cuh"
#include "gemm_sm90.h"
#include "matmul_epilogue.cuh"
#include "matmul_sm90.h"
#include "mma.cuh"

namespace lb {
namespace {
using namespace matmul_epi;

// ------------------------------------------------------------------------------------------------
// SIMT path: 128x128x8 block tile, 256 threads of 8x8 outputs (rows ty*4+{0..3} and 64+ty*4+{0..3},
// columns likewise with tx), so each k step reads 4 float4 from shared memory for 64 FMAs; the next k tile
// is loaded into registers while the current one is multiplied (two shared buffers, one barrier per tile).
// Split K (batch 1, few output tiles, long K: the weight gradients): blockIdx.z is a K slice whose raw sums go
// to partial (splits, M,N) f32; splitk_reduce_kernel adds the slices in order and runs the epilogue.
constexpr int kSimtBM = 128, kSimtBN = 128, kSimtBK = 8, kSimtPad = 4;
// Two blocks per SM where it fits in 128 registers without spilling (sm_90); sm_80's code would spill.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define LB_SIMT_MIN_BLOCKS 2
#else
#define LB_SIMT_MIN_BLOCKS 1
#endif

template <typename TAB, typename TC>
__global__ void __launch_bounds__(256, LB_SIMT_MIN_BLOCKS) matmul_simt_kernel(const TAB* A, const TAB* B, TC* C, TC* pre, int M, int N,
                                                          int K, bool ta, bool tb, int64_t lda, int64_t ldb,
                                                          int64_t ldc, int64_t sa, int64_t sb, int64_t sc, int batch,
                                                          Epi e, float* partial, int kchunk) {
  // A (batch, M,K) or (batch, K,M); B (batch, K,N) or (batch, N,K); C, pre (batch, M,N) row stride ldc;
  // partial (gridDim.z, M,N) when splitting K (batch 1), else null
  __shared__ __align__(16) float As[2][kSimtBK][kSimtBM + kSimtPad];  // As[buf][k][m]
  __shared__ __align__(16) float Bs[2][kSimtBK][kSimtBN + kSimtPad];  // Bs[buf][k][n]
  const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
  const int m0 = blockIdx.y * kSimtBM, n0 = blockIdx.x * kSimtBN;
  // this thread's loads: elements tid + 256*l (l < 4) of each operand tile (1024), the contiguous global dim fastest
  auto a_mk = [&](int l, int& m, int& k) { const int id = tid + l * 256; if (ta) { m = id & 127; k = id >> 7; } else { k = id & 7; m = id >> 3; } };
  auto b_nk = [&](int l, int& n, int& k) { const int id = tid + l * 256; if (tb) { k = id & 7; n = id >> 3; } else { n = id & 127; k = id >> 7; } };
  const int slices = partial ? gridDim.z : batch;
  for (int z = blockIdx.z; z < slices; z += gridDim.z) {
    const TAB* a = partial ? A : A + z * sa;
    const TAB* b = partial ? B : B + z * sb;
    const int k_begin = partial ? z * kchunk : 0;
    const int k_end = partial ? min(K, k_begin + kchunk) : K;
    float ra[4], rb[4];
    auto load = [&](int k0) {
#pragma unroll
      for (int l = 0; l < 4; l++) {
        int am, ak, bn, bk;
        a_mk(l, am, ak);
        b_nk(l, bn, bk);
        const int gm = m0 + am, gk = k0 + ak;
        ra[l] = (gm < M && gk < k_end) ? lb_ld(a + (ta ? (int64_t)gk * lda + gm : (int64_t)gm * lda + gk)) : 0.0f;
        const int gn = n0 + bn, gk2 = k0 + bk;
        rb[l] = (gn < N && gk2 < k_end) ? lb_ld(b + (tb ? (int64_t)gn * ldb + gk2 : (int64_t)gk2 * ldb + gn)) : 0.0f;
      }
    };
    auto store = [&](int buf) {
#pragma unroll
      for (int l = 0; l < 4; l++) {
        int am, ak, bn, bk;
        a_mk(l, am, ak);
        b_nk(l, bn, bk);
        As[buf][ak][am] = ra[l];
        Bs[buf][bk][bn] = rb[l];
      }
    };
    float acc[8][8] = {};
    if (k_begin < k_end) {
      load(k_begin);
      store(0);
      __syncthreads();
    }
    for (int k0 = k_begin, buf = 0; k0 < k_end; k0 += kSimtBK, buf ^= 1) {
      const bool next = k0 + kSimtBK < k_end;
      if (next) load(k0 + kSimtBK);
#pragma unroll
      for (int k = 0; k < kSimtBK; k++) {
        const float4 a0 = *reinterpret_cast<const float4*>(&As[buf][k][ty * 4]);
        const float4 a1 = *reinterpret_cast<const float4*>(&As[buf][k][64 + ty * 4]);
        const float4 b0 = *reinterpret_cast<const float4*>(&Bs[buf][k][tx * 4]);
        const float4 b1 = *reinterpret_cast<const float4*>(&Bs[buf][k][64 + tx * 4]);
        const float av[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
        const float bv[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
        for (int i = 0; i < 8; i++)
#pragma unroll
          for (int j = 0; j < 8; j++) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
      }
      if (next) store(buf ^ 1);
      __syncthreads();  // the tile just read may be overwritten next; the one just stored is complete
    }
    // pair i: row i / 4 of the thread's 8, columns j, j+1 with j = 2 (i % 4) of its 8
    auto coord = [&](int i, int* m, int* n) {
      const int r = i >> 2, j = 2 * (i & 3);
      *m = m0 + (r < 4 ? ty * 4 + r : 64 + ty * 4 + r - 4);
      *n = n0 + (j < 4 ? tx * 4 + j : 64 + tx * 4 + j - 4);
    };
    if (partial) {
#pragma unroll
      for (int i = 0; i < 32; i++) {
        int m, n;
        coord(i, &m, &n);
        if (m >= M || n >= N) continue;
        float* q = partial + (size_t)z * M * N + (size_t)m * N + n;
        q[0] = acc[i >> 2][2 * (i & 3)];
        if (n + 1 < N) q[1] = acc[i >> 2][2 * (i & 3) + 1];
      }
    } else {
      epilogue_tile<32>(C + z * sc, pre ? pre + z * sc : nullptr, M, N, ldc, &acc[0][0], coord, e);
    }
  }
}

// C (M,N) row stride ldc = epilogue(sum over the splits of partial (splits, M,N)), splits in order: deterministic.
template <typename TC>
__global__ void splitk_reduce_kernel(const float* partial, TC* C, TC* pre, int M, int N, int splits,
                                          int64_t ldc, Epi e) {
  const int64_t mn = (int64_t)M * N;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < mn; i += (int64_t)gridDim.x * blockDim.x) {
    float v = 0.0f;
    for (int s = 0; s < splits; s++) v += partial[s * mn + i];
    const int m = (int)(i / N), n = (int)(i % N);
    epilogue_store(C, pre, (size_t)m * ldc + n, n, v, e);
  }
}

// C (and pre) of p = epilogue(in-order sum of partial (slices, M,N)): the second half of both split-K forms
template <typename TC>
void launch_splitk_reduce(const float* partial, int slices, const MatmulParams& p, const Epi& e) {
  const int64_t mn = (int64_t)p.M * p.N;
  const int blocks = (int)std::min<int64_t>((mn + 255) / 256, 8 * (int64_t)cuda_props().multiProcessorCount);
  splitk_reduce_kernel<TC><<<blocks, 256, 0, cuda_stream()>>>(partial, (TC*)p.c, (TC*)p.pre_gelu, p.M, p.N, slices,
                                                              p.ldc, e);
  lb_check_launch("matmul");
}

// ------------------------------------------------------------------------------------------------
// Tensor-core path (bf16, sm_80+).
constexpr int kBM = 128, kBN = 128, kBK = 32, kStages = 3, kThreads = 256;
constexpr int kTileBytes = 128 * 32 * 2;                     // one operand tile (8 KiB) in either layout
constexpr int kSmemBytes = kStages * 2 * kTileBytes;         // 48 KiB

// Shared tiles are rows of 16-byte chunks. K-contiguous tiles: 128 rows x 4 chunks (64 B rows);
// M/N-contiguous tiles: 32 rows x 16 chunks (256 B rows). The XOR swizzle makes the 8 row addresses
// of every ldmatrix phase hit 8 different 16-byte bank groups.
template <int CH>
__device__ __forceinline__ uint32_t tile_off(int r, int c) {
  const int pc = CH == 4 ? (c ^ ((r >> 1) & 3)) : (c ^ (r & 7));
  return (uint32_t)((r * CH + pc) * 16);
}

// Loads one 128x32 (or 32x128) operand tile for k-block k0 into shared memory at `base`.
//   kc (k-contiguous): global rows = the M (or N) index, extent R; columns = k, extent K.
//   otherwise:         global rows = k, extent K; columns = the M (or N) index, extent R.
template <bool KC>
__device__ __forceinline__ void load_tile(uint32_t base, const bf16_t* g, int64_t ld, int r0, int R, int k0, int K,
                                          int tid) {
#pragma unroll
  for (int l = 0; l < 2; l++) {
    const int id = tid + l * kThreads;
    int r, c, grow, gcol, rows_ext, cols_ext;
    if (KC) { r = id >> 2; c = id & 3; grow = r0 + r; gcol = k0 + c * 8; rows_ext = R; cols_ext = K; }
    else    { r = id >> 4; c = id & 15; grow = k0 + r; gcol = r0 + c * 8; rows_ext = K; cols_ext = R; }
    int valid = 0;
    if (grow < rows_ext) valid = min(8, max(0, cols_ext - gcol));
    const bf16_t* src = valid ? g + (int64_t)grow * ld + gcol : g;
    lb_cp_async16(base + (KC ? tile_off<4>(r, c) : tile_off<16>(r, c)), src, valid * 2);
  }
}

template <bool TA, bool TB, typename TC>
__global__ void __launch_bounds__(kThreads) matmul_mma_kernel(const bf16_t* A, const bf16_t* B, TC* C, TC* pre,
                                                              int M, int N, int K, int64_t lda, int64_t ldb,
                                                              int64_t ldc, int64_t sa, int64_t sb, int64_t sc,
                                                              int batch, Epi e) {
  // A (batch, M,K) [TA: (K,M)]; B (batch, K,N) [TB: (N,K)]; C, pre (batch, M,N); bf16 operands
  extern __shared__ __align__(128) unsigned char smem[];  // kStages x {A tile, B tile}
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = warp >> 2, wn = warp & 3;  // warp tile: rows wm*64.., cols wn*32..
  const int m0 = blockIdx.y * kBM, n0 = blockIdx.x * kBN;
  const uint32_t sbase = lb_smem_addr(smem);
  const int KT = (K + kBK - 1) / kBK;
  for (int z = blockIdx.z; z < batch; z += gridDim.z) {
    const bf16_t* a = A + z * sa;
    const bf16_t* b = B + z * sb;
    float acc[4][4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
      for (int j = 0; j < 4; j++)
#pragma unroll
        for (int r = 0; r < 4; r++) acc[i][j][r] = 0.0f;

    auto load_stage = [&](int stage, int kt) {
      const uint32_t sa_ = sbase + stage * 2 * kTileBytes, sb_ = sa_ + kTileBytes;
      load_tile<!TA>(sa_, a, lda, m0, M, kt * kBK, K, tid);
      load_tile<TB>(sb_, b, ldb, n0, N, kt * kBK, K, tid);
    };
#pragma unroll
    for (int s = 0; s < kStages - 1; s++) {
      if (s < KT) load_stage(s, s);
      lb_cp_async_commit();
    }
    for (int kt = 0; kt < KT; kt++) {
      lb_cp_async_wait<kStages - 2>();
      __syncthreads();  // tile kt landed for every thread; every warp is done with tile kt-1
      if (kt + kStages - 1 < KT) load_stage((kt + kStages - 1) % kStages, kt + kStages - 1);
      lb_cp_async_commit();
      const uint32_t ta_ = sbase + (kt % kStages) * 2 * kTileBytes, tb_ = ta_ + kTileBytes;
#pragma unroll
      for (int ks = 0; ks < 2; ks++) {
        uint32_t af[4][4], bfr[2][4];
#pragma unroll
        for (int mi = 0; mi < 4; mi++) {
          const int mb = wm * 64 + mi * 16;
          if (!TA) {
            lb_ldmatrix_x4(af[mi], ta_ + tile_off<4>(mb + (lane & 15), ks * 2 + (lane >> 4)));
          } else {
            const int idx = lane >> 3, r = lane & 7;
            lb_ldmatrix_x4_trans(af[mi], ta_ + tile_off<16>(ks * 16 + r + (idx >> 1) * 8, (mb + (idx & 1) * 8) >> 3));
          }
        }
#pragma unroll
        for (int nj = 0; nj < 2; nj++) {
          const int nb = wn * 32 + nj * 16, idx = lane >> 3, r = lane & 7;
          if (TB) lb_ldmatrix_x4(bfr[nj], tb_ + tile_off<4>(nb + r + (idx >> 1) * 8, ks * 2 + (idx & 1)));
          else lb_ldmatrix_x4_trans(bfr[nj], tb_ + tile_off<16>(ks * 16 + r + (idx & 1) * 8, (nb + (idx >> 1) * 8) >> 3));
        }
#pragma unroll
        for (int mi = 0; mi < 4; mi++)
#pragma unroll
          for (int ni = 0; ni < 4; ni++)
            lb_mma_bf16(acc[mi][ni], af[mi], bfr[ni >> 1][(ni & 1) * 2], bfr[ni >> 1][(ni & 1) * 2 + 1]);
      }
    }
    lb_cp_async_wait<0>();
    __syncthreads();  // the next batch entry reuses the stages
    const int g = lane >> 2, t = lane & 3;
    // pair i = (mi, ni, h): rows g and g+8 of the 16x8 fragment hold accumulators (2h, 2h+1), columns n, n+1
    epilogue_tile<32>(C + z * sc, pre ? pre + z * sc : nullptr, M, N, ldc, &acc[0][0][0],
                      [&](int i, int* m, int* n) {
                        const int mi = i >> 3, ni = (i >> 1) & 3, h = i & 1;
                        *m = m0 + wm * 64 + mi * 16 + g + h * 8;
                        *n = n0 + wn * 32 + ni * 8 + 2 * t;
                      }, e);
  }
}

bool aligned16(const void* p) { return ((uintptr_t)p & 15) == 0; }

template <typename TC>
void launch_mma(const MatmulParams& p, const Epi& e) {
  const dim3 grid((p.N + kBN - 1) / kBN, (p.M + kBM - 1) / kBM, std::min(p.batch, 65535));
  auto go = [&](auto kernel) {
    lb_set_max_smem((const void*)kernel, kSmemBytes, "matmul");
    kernel<<<grid, kThreads, kSmemBytes, cuda_stream()>>>((const bf16_t*)p.a, (const bf16_t*)p.b, (TC*)p.c,
                                                          (TC*)p.pre_gelu, p.M, p.N, p.K, p.lda, p.ldb, p.ldc,
                                                          p.stride_a, p.stride_b, p.stride_c, p.batch, e);
  };
  if (!p.trans_a && !p.trans_b) go(matmul_mma_kernel<false, false, TC>);
  else if (!p.trans_a && p.trans_b) go(matmul_mma_kernel<false, true, TC>);
  else if (p.trans_a && !p.trans_b) go(matmul_mma_kernel<true, false, TC>);
  else go(matmul_mma_kernel<true, true, TC>);
}

template <typename TAB, typename TC>
void launch_simt(const MatmulParams& p, const Epi& e) {
  const int tiles_n = (p.N + kSimtBN - 1) / kSimtBN, tiles_m = (p.M + kSimtBM - 1) / kSimtBM;
  // Split K when one matrix gives fewer blocks than two waves and K is long: ~2 blocks per SM, each slice
  // at least 256 deep (a multiple of the k tile), so the partial sums cost little next to the products.
  const int64_t tiles = (int64_t)tiles_m * tiles_n, want = 2 * (int64_t)cuda_props().multiProcessorCount;
  int splits = 1, kchunk = p.K;
  if (p.batch == 1 && tiles < want && p.K >= 512) {
    splits = (int)std::min<int64_t>({(want + tiles - 1) / tiles, p.K / 256, 64});
    kchunk = (p.K + splits - 1) / splits;
    kchunk = (kchunk + kSimtBK - 1) / kSimtBK * kSimtBK;
    splits = (p.K + kchunk - 1) / kchunk;
  }
  if (splits > 1) {
    CudaScratch partial(sizeof(float) * (size_t)splits * p.M * p.N);
    matmul_simt_kernel<TAB, TC><<<dim3(tiles_n, tiles_m, splits), 256, 0, cuda_stream()>>>(
        (const TAB*)p.a, (const TAB*)p.b, (TC*)p.c, (TC*)p.pre_gelu, p.M, p.N, p.K, p.trans_a, p.trans_b, p.lda,
        p.ldb, p.ldc, 0, 0, 0, 1, e, partial.as<float>(), kchunk);
    lb_check_launch("matmul");
    launch_splitk_reduce<TC>(partial.as<float>(), splits, p, e);
    return;
  }
  const dim3 grid(tiles_n, tiles_m, std::min(p.batch, 65535));
  matmul_simt_kernel<TAB, TC><<<grid, 256, 0, cuda_stream()>>>(
      (const TAB*)p.a, (const TAB*)p.b, (TC*)p.c, (TC*)p.pre_gelu, p.M, p.N, p.K, p.trans_a, p.trans_b, p.lda, p.ldb,
      p.ldc, p.stride_a, p.stride_b, p.stride_c, p.batch, e, nullptr, p.K);
}

// ------------------------------------------------------------------------------------------------
// bias_backward: dbias[n] += sum_m dout[m,n]. Stage 1: partial column sums over chunks of kBiasRows
// rows (one thread per column, rows in order); stage 2: chunks summed in order. Deterministic.
constexpr int kBiasRows = 128;

template <typename T>
__global__ void bias_partial_kernel(const T* dout, float* partial, int M, int N, int64_t ld) {
  // dout (M,N) row stride ld, partial (chunks,N)
  const int n = blockIdx.x * blockDim.x + threadIdx.x;
  if (n >= N) return;
  const int r0 = blockIdx.y * kBiasRows, r1 = min(M, r0 + kBiasRows);
  float acc = 0.0f;
  for (int m = r0; m < r1; m++) acc += lb_ld(dout + (size_t)m * ld + n);
  partial[(size_t)blockIdx.y * N + n] = acc;
}

__global__ void bias_final_kernel(const float* partial, float* dbias, int chunks, int N) {  // dbias (N) +=
  const int n = blockIdx.x * blockDim.x + threadIdx.x;
  if (n >= N) return;
  float acc = 0.0f;
  for (int k = 0; k < chunks; k++) acc += partial[(size_t)k * N + n];
  dbias[n] += acc;
}

std::atomic<const char*> g_last_path{"none"};

// LINKBERT_CUDA_SPLITK=0|1 (read once; default 1): split K for the TN weight gradients (lb_splitk_plan).
// 0 runs every GEMM whole (for A/B runs: scripts/gpu/ab.sh LINKBERT_CUDA_SPLITK 0 1).
bool cuda_splitk_enabled() {
  static const bool on = [] {
    const char* s = std::getenv("LINKBERT_CUDA_SPLITK");
    if (!s || !*s || !std::strcmp(s, "1")) return true;
    if (!std::strcmp(s, "0")) return false;
    throw std::runtime_error(std::string("LINKBERT_CUDA_SPLITK must be 0 or 1, got '") + s + "'");
  }();
  return on;
}

// The slices of s as one batched bf16 GEMM into f32 partials (slices, M,N), then their in-order sum
// through the epilogue into C.
void matmul_splitk(const MatmulParams& p, const Epi& e, const LbSplitK& s) {
  CudaScratch partial(sizeof(float) * (size_t)s.slices * p.M * p.N);
  MatmulParams q = p;
  q.K = s.kc;
  q.batch = s.slices;  // batch > 1: never split again
  q.stride_a = s.stride_a;
  q.stride_b = s.stride_b;
  q.c = partial.ptr;
  q.c_dtype = DType::F32;
  q.ldc = p.N;
  q.stride_c = (int64_t)p.M * p.N;
  q.alpha = 1.0f;
  q.beta = 0.0f;
  q.bias = nullptr;
  q.epilogue = Epilogue::None;
  q.pre_gelu = nullptr;
  matmul_forward_cuda(q);
  if (p.c_dtype == DType::F32) launch_splitk_reduce<float>(partial.as<float>(), s.slices, p, e);
  else launch_splitk_reduce<bf16_t>(partial.as<float>(), s.slices, p, e);
}

}  // namespace

const char* cuda_matmul_last_path() { return g_last_path.load(); }

void matmul_forward_cuda(const MatmulParams& p) {
  if (p.M <= 0 || p.N <= 0 || p.batch <= 0) return;
  if (p.c_dtype != DType::F32 && p.c_dtype != DType::BF16) lb_unsupported("matmul", p.c_dtype);
  const size_t csz = dtype_size(p.c_dtype);
  const bool pairs = p.ldc % 2 == 0 && (p.batch == 1 || p.stride_c % 2 == 0) && ((uintptr_t)p.c % (2 * csz)) == 0 &&
                     ((uintptr_t)p.pre_gelu % (2 * csz)) == 0;
  const Epi e{p.alpha, p.beta, p.bias, p.epilogue, pairs};
  if (p.ab_dtype == DType::BF16) {
    if (p.batch == 1 && cuda_splitk_enabled()) {
      const LbSplitK s = lb_splitk_plan(p.M, p.N, p.K, p.batch, p.trans_a, p.trans_b, p.lda, p.ldb,
                                        cuda_props().multiProcessorCount);
      if (s.slices > 1) return matmul_splitk(p, e, s);
    }
    const GemmMode mode = cuda_gemm_mode();
    if (mode != GemmMode::Mma && p.K > 0) {
      const bool sm90a = cuda_sm90a_loaded();
      if (!sm90a && mode == GemmMode::Wgmma)
        throw std::runtime_error("matmul: LINKBERT_CUDA_GEMM=wgmma needs a compute capability 9.0 device and the sm_90a "
                                 "image (build with LINKBERT_CUDA_ARCHS including 90a)");
      if (sm90a && matmul_sm90_launch(p, e)) {
        g_last_path = "wgmma";
        lb_check_launch("matmul");
        return;
      }
    }
    const bool mma_ok = cuda_props().major >= 8 && aligned16(p.a) && aligned16(p.b) && p.lda % 8 == 0 &&
                        p.ldb % 8 == 0 && (p.batch == 1 || (p.stride_a % 8 == 0 && p.stride_b % 8 == 0));
    if (mma_ok) {
      g_last_path = "mma";
      if (p.c_dtype == DType::F32) launch_mma<float>(p, e);
      else launch_mma<bf16_t>(p, e);
    } else {
      g_last_path = "simt";
      if (p.c_dtype == DType::F32) launch_simt<bf16_t, float>(p, e);
      else launch_simt<bf16_t, bf16_t>(p, e);
    }
  } else if (p.ab_dtype == DType::F32) {
    g_last_path = "simt";
    if (p.c_dtype == DType::F32) launch_simt<float, float>(p, e);
    else launch_simt<float, bf16_t>(p, e);
  } else {
    lb_unsupported("matmul", p.ab_dtype);
  }
  lb_check_launch("matmul");
}

void bias_backward_cuda(const BiasBackwardParams& p) {
  if (p.M <= 0 || p.N <= 0) return;
  const int chunks = (p.M + kBiasRows - 1) / kBiasRows;
  if (chunks > 65535) throw std::runtime_error("bias_backward: M too large for the cuda grid");
  CudaScratch partial(sizeof(float) * (size_t)chunks * p.N);
  LB_FLOAT_DISPATCH("bias_backward", p.dtype, T,
                    bias_partial_kernel<T><<<dim3((p.N + 127) / 128, chunks), 128, 0, cuda_stream()>>>(
                        (const T*)p.dout, partial.as<float>(), p.M, p.N, p.ld));
  lb_check_launch("bias_backward");
  bias_final_kernel<<<(p.N + 255) / 256, 256, 0, cuda_stream()>>>(partial.as<float>(), p.dbias, chunks, p.N);
  lb_check_launch("bias_backward");
}

}  // namespace lb
