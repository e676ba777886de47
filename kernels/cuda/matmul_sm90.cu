// matmul_sm90.cu: the Hopper (sm_90a) bf16 GEMM path of matmul_forward_cuda: TMA loads, an mbarrier
// pipeline and wgmma.mma_async, f32 accumulation, the same epilogues as matmul.cu.
//
// Block: 288 threads. Warps 0-7 are two consumer warpgroups, each computing 64 rows x BN columns of the
// 128 x BN block tile (BN = 128); warp 8 is the producer: one thread issues the TMA loads of each k-block
// (64 bf16, the 128-byte swizzle row) into a ring of kStages = 3 stages (96 KiB, two blocks per SM;
// LINKBERT_SM90_STAGES=7: 224 KiB, one block per SM). full[s] completes when the stage's bytes land
// (expect_tx); empty[s] when all 8 consumer warps are done reading it (one arrive per warp after
// wgmma.wait_group retires the k-block). Consumers keep one k-block of wgmma in flight.
// Shared-memory layouts, descriptors, the accumulator fragment and the tile raster are the tested
// helpers of gemm_sm90.h. Edges: TMA zero-fills boxes past the matrix (M, N, K need no padding), the
// epilogue masks the stores. Transposes: both operand majors (wgmma imm-trans), so NN, NT, TN and TT.
//
// Only the sm_90a image has the kernel body (wgmma and TMA need __CUDA_ARCH_FEAT_SM90_ALL); sm_80 and
// plain sm_90 get a trapping stub, and the host launches it only after a probe kernel from this file
// reported the sm_90a image loaded (cuda_sm90a_loaded). The tensor maps come from cuTensorMapEncodeTiled
// via cudaGetDriverEntryPointByVersion: nothing links libcuda.
//
// Validated on an H200 (2026-11-26, scripts/gpu/run.sh): test/cuda-gemm.test.ts and the op table pass on
// this path; timings in bench/results/2026-11-26-h200.json. LINKBERT_CUDA_GEMM=mma|wgmma|auto picks the path.
#include <cuda.h>  // CUtensorMap and the cuTensorMapEncodeTiled types only

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "common.cuh"
#include "gemm_sm90.h"
#include "matmul_epilogue.cuh"
#include "matmul_sm90.h"

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ == 900 && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define LB_SM90A_BODY 1
#endif

namespace lb {
namespace {
using namespace matmul_epi;

constexpr int kSm90Threads = 288;  // 2 consumer warpgroups + 1 producer warp
constexpr int kConsumerWarps = 8;
static_assert(kSm90Threads == 32 * (kConsumerWarps + 1), "warps 0-7 consume, warp 8 produces");

// S stages of 32 KiB: 3 (the default) lets two blocks share an SM, so one block's prologue and epilogue
// overlap the other's main loop; 7 is the deepest ring for one block per SM. On an H200 (2026-11-26,
// bench/results/2026-11-26-h200-ab-stages.json, alternating runs) 3 stages beat 7 at every bf16 bench
// shape: 4096^3 404-448 -> 544-566 TFLOP/s, bert-base GEMMs up to +60%. 128 x 256 tiles (4 stages of 48 KiB)
// measured slower on an H200 at every benchmark shape (4096^3 NT: 315 against 449 TFLOP/s for 128 x 128
// with 6 stages): with one k-block of wgmma in flight only S - 2 stages are loading.
template <int BN, int S>
struct Sm90Cfg {
  static constexpr int kStages = S;
  static constexpr int kBlocksPerSm = S <= 3 ? 2 : 1;
  static constexpr int kABytes = kSm90BM * kSm90BK * 2;  // 16 KiB
  static constexpr int kBBytes = BN * kSm90BK * 2;       // 32 or 16 KiB
  static constexpr int kStageBytes = kABytes + kBBytes;
  static constexpr int kSmem = kStages * kStageBytes + 2 * kStages * 8 + 1024;  // + barriers + alignment slack
  static_assert(kSmem <= 227 * 1024, "sm_90 allows 227 KiB of dynamic shared memory per block");
  static_assert(BN == 128, "one tile width");
};

#ifdef LB_SM90A_BODY
__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ bool mbar_try_wait(uint32_t bar, uint32_t parity) {
  uint32_t ok;
  asm volatile(
      "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
      : "=r"(ok)
      : "r"(bar), "r"(parity)
      : "memory");
  return ok != 0;
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  while (!mbar_try_wait(bar, parity)) {
  }
}
// 3-D tile load (coordinates innermost first) into shared memory, completing `bytes` on the mbarrier.
__device__ __forceinline__ void tma_load_3d(uint32_t dst, const CUtensorMap* map, int c0, int c1, int c2,
                                            uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], "
      "[%5];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(bar)
      : "memory");
}
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// Keeps the compiler from moving accumulator reads/writes across the asynchronous wgmma boundaries.
template <int R>
__device__ __forceinline__ void fence_acc(float (&d)[R]) {
#pragma unroll
  for (int i = 0; i < R; i++) asm volatile("" : "+f"(d[i])::"memory");
}

// d (64x128 f32, 64 per thread) += A(desc) * B(desc); TA/TB: 1 = MN-major operand.
template <int TA, int TB>
__device__ __forceinline__ void lb_wgmma_m64n128(float (&d)[64], uint64_t da, uint64_t db) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
      "}, %64, %65, p, 1, 1, %67, %68;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
        "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
        "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
        "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "l"(da), "l"(db), "r"(1), "n"(TA), "n"(TB));
}
template <int BN, int TA, int TB>
__device__ __forceinline__ void wgmma_tile(float (&d)[BN / 2], uint64_t da, uint64_t db) {
  static_assert(BN == 128, "one tile width: 128 (see Sm90Cfg)");
  lb_wgmma_m64n128<TA, TB>(d, da, db);
}
#endif  // LB_SM90A_BODY

// Writes 1 when the image the driver loaded for this file is the sm_90a one.
__global__ void sm90a_probe_kernel(int* out) {
#ifdef LB_SM90A_BODY
  *out = 1;
#else
  *out = 0;
#endif
}

// A (batch, M,K) [TA: (K,M)]; B (batch, K,N) [TB: (N,K)]; C, pre (batch, M,N) row stride ldc, batch stride sc.
// tmA / tmB: 3-D bf16 tensor maps {contiguous dim, other dim, batch}, 128B swizzle, boxes as in gemm_sm90.h.
template <int BN, int STAGES, bool TA, bool TB, typename TC>
__global__ void __launch_bounds__(kSm90Threads, Sm90Cfg<BN, STAGES>::kBlocksPerSm)
    matmul_wgmma_kernel(const __grid_constant__ CUtensorMap tmA, const __grid_constant__ CUtensorMap tmB, TC* C,
                        TC* pre, int M, int N, int K, int64_t ldc, int64_t sc, Epi e) {
#ifdef LB_SM90A_BODY
  using Cfg = Sm90Cfg<BN, STAGES>;
  constexpr int S = Cfg::kStages;
  extern __shared__ __align__(128) unsigned char smem[];
  const uint32_t tiles = (lb_smem_addr(smem) + 1023u) & ~1023u;  // swizzle atoms need 1024-byte alignment
  const uint32_t bars = tiles + S * Cfg::kStageBytes;           // full[S], then empty[S]
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int z = blockIdx.y;
  const int nm = (M + kSm90BM - 1) / kSm90BM, nn = (N + BN - 1) / BN;
  int bm, bn;
  lb_sm90_tile(blockIdx.x, nm, nn, kSm90Group, &bm, &bn);
  const int m0 = bm * kSm90BM, n0 = bn * BN;
  const int KT = (K + kSm90BK - 1) / kSm90BK;

  if (tid == 0) {
    for (int s = 0; s < S; s++) {
      mbar_init(bars + 8 * s, 1);
      mbar_init(bars + 8 * (S + s), kConsumerWarps);
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
  }
  __syncthreads();

  if (warp == kConsumerWarps) {  // producer warp: one thread issues every load
    if (lane == 0) {
      asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(&tmA)) : "memory");
      asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(&tmB)) : "memory");
      for (int kt = 0; kt < KT; kt++) {
        const int s = kt % S;
        if (kt >= S) mbar_wait(bars + 8 * (S + s), ((kt / S) - 1) & 1);  // consumers released the stage
        const uint32_t full = bars + 8 * s, sa = tiles + s * Cfg::kStageBytes, sb = sa + Cfg::kABytes;
        mbar_arrive_expect_tx(full, Cfg::kStageBytes);  // OOB parts of boxes are zero-filled and counted
        const int k0 = kt * kSm90BK;
        if (!TA) {
          tma_load_3d(sa, &tmA, k0, m0, z, full);
        } else {
#pragma unroll
          for (int i = 0; i < kSm90BM / 64; i++) tma_load_3d(sa + i * kSm90BoxBytes, &tmA, m0 + 64 * i, k0, z, full);
        }
        if (TB) {
          tma_load_3d(sb, &tmB, k0, n0, z, full);
        } else {
#pragma unroll
          for (int i = 0; i < BN / 64; i++) tma_load_3d(sb + i * kSm90BoxBytes, &tmB, n0 + 64 * i, k0, z, full);
        }
      }
    }
    return;
  }

  // Consumer warpgroup wg: rows [64 wg, 64 wg + 64) of the block tile.
  const int wg = warp >> 2, t = tid & 127;
  float acc[BN / 2];
#pragma unroll
  for (int i = 0; i < BN / 2; i++) acc[i] = 0.0f;
  for (int kt = 0; kt < KT; kt++) {
    const int s = kt % S;
    mbar_wait(bars + 8 * s, (kt / S) & 1);
    __syncwarp();  // the .sync.aligned wgmma instructions below need the warp converged after the spin
    const uint32_t sa = tiles + s * Cfg::kStageBytes, sb = sa + Cfg::kABytes;
    fence_acc(acc);
    wgmma_fence();
#pragma unroll
    for (int ks = 0; ks < kSm90BK / 16; ks++)
      wgmma_tile<BN, TA ? 1 : 0, TB ? 0 : 1>(acc, lb_sm90_desc(sa, 64 * wg, ks, TA), lb_sm90_desc(sb, 0, ks, !TB));
    wgmma_commit();
    wgmma_wait<1>();  // k-block kt-1 retired: its stage can be refilled
    fence_acc(acc);
    if (kt > 0 && lane == 0) mbar_arrive(bars + 8 * (S + (kt - 1) % S));
  }
  wgmma_wait<0>();
  fence_acc(acc);

  // pair i: accumulator registers 2i, 2i+1, columns n, n+1 of one row
  epilogue_tile<BN / 4>(C + z * sc, pre ? pre + z * sc : nullptr, M, N, ldc, acc,
                        [&](int i, int* m, int* n) {
                          int row, col;
                          lb_wgmma_acc_coord(t, 2 * i, &row, &col);
                          *m = m0 + 64 * wg + row;
                          *n = n0 + col;
                        }, e);
#else
  __trap();  // not the sm_90a image: the host never launches this (cuda_sm90a_loaded)
#endif
}

// ---- host side
typedef CUresult (*EncodeTiledFn)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*,
                                  const cuuint64_t*, const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave,
                                  CUtensorMapSwizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill);

EncodeTiledFn encode_tiled() {
  static const EncodeTiledFn fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &q) != cudaSuccess ||
        q != cudaDriverEntryPointSuccess) {
      (void)cudaGetLastError();
      return (EncodeTiledFn) nullptr;
    }
    return reinterpret_cast<EncodeTiledFn>(f);
  }();
  return fn;
}

// A bf16 matrix stored (batch, outer, inner) with row stride ld and batch stride bstride (elements);
// boxes of box_inner x box_outer, 128B swizzle, zero fill out of bounds.
bool encode_map(CUtensorMap* map, const void* base, int64_t inner, int64_t outer, int batch, int64_t ld,
                int64_t bstride, int box_inner, int box_outer) {
  const EncodeTiledFn fn = encode_tiled();
  if (!fn) return false;
  if (batch == 1) bstride = ld * outer;
  const cuuint64_t dims[3] = {(cuuint64_t)inner, (cuuint64_t)outer, (cuuint64_t)batch};
  const cuuint64_t strides[2] = {(cuuint64_t)ld * 2, (cuuint64_t)bstride * 2};
  const cuuint32_t box[3] = {(cuuint32_t)box_inner, (cuuint32_t)box_outer, 1};
  const cuuint32_t estr[3] = {1, 1, 1};
  return fn(map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 3, const_cast<void*>(base), dims, strides, box, estr,
            CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
            CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

template <int BN, int S, bool TA, bool TB, typename TC>
void launch_wgmma(const CUtensorMap& ta, const CUtensorMap& tb, const MatmulParams& p, const Epi& e) {
  auto kernel = matmul_wgmma_kernel<BN, S, TA, TB, TC>;
  lb_set_max_smem((const void*)kernel, Sm90Cfg<BN, S>::kSmem, "matmul");
  const int nm = (p.M + kSm90BM - 1) / kSm90BM, nn = (p.N + BN - 1) / BN;
  kernel<<<dim3(nm * nn, p.batch), kSm90Threads, Sm90Cfg<BN, S>::kSmem, cuda_stream()>>>(
      ta, tb, (TC*)p.c, (TC*)p.pre_gelu, p.M, p.N, p.K, p.ldc, p.stride_c, e);
}

template <int BN, int S, typename TC>
void launch_wgmma_t(const CUtensorMap& ta, const CUtensorMap& tb, const MatmulParams& p, const Epi& e) {
  if (!p.trans_a && !p.trans_b) launch_wgmma<BN, S, false, false, TC>(ta, tb, p, e);
  else if (!p.trans_a && p.trans_b) launch_wgmma<BN, S, false, true, TC>(ta, tb, p, e);
  else if (p.trans_a && !p.trans_b) launch_wgmma<BN, S, true, false, TC>(ta, tb, p, e);
  else launch_wgmma<BN, S, true, true, TC>(ta, tb, p, e);
}

// LINKBERT_SM90_STAGES=3|7 (read once; default 3): the ring depth, for benchmarking the two layouts.
int sm90_stages() {
  static const int stages = [] {
    const char* s = std::getenv("LINKBERT_SM90_STAGES");
    if (!s || !*s) return 3;
    if (!std::strcmp(s, "7") || !std::strcmp(s, "3")) return std::atoi(s);
    throw std::runtime_error(std::string("LINKBERT_SM90_STAGES must be 7 or 3, got '") + s + "'");
  }();
  return stages;
}

}  // namespace

GemmMode cuda_gemm_mode() {
  static const GemmMode mode = [] {
    const char* s = std::getenv("LINKBERT_CUDA_GEMM");
    if (!s || !*s || !std::strcmp(s, "auto")) return GemmMode::Auto;
    if (!std::strcmp(s, "mma")) return GemmMode::Mma;
    if (!std::strcmp(s, "wgmma")) return GemmMode::Wgmma;
    throw std::runtime_error(std::string("LINKBERT_CUDA_GEMM must be auto, mma or wgmma, got '") + s + "'");
  }();
  return mode;
}

bool cuda_sm90a_loaded() {
  static std::mutex mu;
  static std::unordered_map<int, bool> cache;
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(dev);
  if (it != cache.end()) return it->second;
  bool ok = false;
  const cudaDeviceProp& pr = cuda_props();
  if (pr.major == 9 && pr.minor == 0 && encode_tiled() != nullptr) {
    int* d = nullptr;
    int h = 0;
    if (cudaMalloc(&d, sizeof(int)) == cudaSuccess) {
      sm90a_probe_kernel<<<1, 1, 0, cuda_stream()>>>(d);
      ok = cudaGetLastError() == cudaSuccess &&
           cudaMemcpyAsync(&h, d, sizeof(int), cudaMemcpyDeviceToHost, cuda_stream()) == cudaSuccess &&
           cudaStreamSynchronize(cuda_stream()) == cudaSuccess && h == 1;
      cudaFree(d);
    }
    (void)cudaGetLastError();  // a failed probe launch (no image) is not sticky; leave no error behind
  }
  cache[dev] = ok;
  return ok;
}

bool matmul_sm90_launch(const MatmulParams& p, const Epi& e) {
  if (p.ab_dtype != DType::BF16 || (p.c_dtype != DType::F32 && p.c_dtype != DType::BF16)) return false;
  if (p.batch > 65535) return false;
  if (lb_sm90_reject(p.M, p.N, p.K, p.batch, p.trans_a, p.trans_b, p.lda, p.ldb, p.stride_a, p.stride_b,
                     (uint64_t)(uintptr_t)p.a, (uint64_t)(uintptr_t)p.b) != kSm90Ok)
    return false;
  constexpr int BN = 128;
  CUtensorMap ta, tb;
  const bool ok_a = p.trans_a ? encode_map(&ta, p.a, p.M, p.K, p.batch, p.lda, p.stride_a, 64, 64)
                              : encode_map(&ta, p.a, p.K, p.M, p.batch, p.lda, p.stride_a, 64, kSm90BM);
  const bool ok_b = p.trans_b ? encode_map(&tb, p.b, p.K, p.N, p.batch, p.ldb, p.stride_b, 64, BN)
                              : encode_map(&tb, p.b, p.N, p.K, p.batch, p.ldb, p.stride_b, 64, 64);
  if (!ok_a || !ok_b) return false;
  const bool f32 = p.c_dtype == DType::F32;
  if (sm90_stages() == 3) f32 ? launch_wgmma_t<BN, 3, float>(ta, tb, p, e) : launch_wgmma_t<BN, 3, bf16_t>(ta, tb, p, e);
  else f32 ? launch_wgmma_t<BN, 7, float>(ta, tb, p, e) : launch_wgmma_t<BN, 7, bf16_t>(ta, tb, p, e);
  return true;
}

}  // namespace lb
