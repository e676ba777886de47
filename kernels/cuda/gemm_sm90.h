// gemm_sm90.h: the index math of the Hopper GEMM (matmul_sm90.cu), as pure __host__ __device__ helpers
// (LB_HD from kernels/common.h) with no CUDA include, so the CPU tests check it (native/host_math.cc,
// test/host-math.test.ts). Everything here follows the PTX ISA sections on wgmma.mma_async
// ("Matrix fragments for wgmma .m64nNk16", "Shared Memory Matrix Layout", "Matrix Descriptor Format")
// and cp.async.bulk.tensor with CU_TENSOR_MAP_SWIZZLE_128B.
//
// Tiles: the block computes a kSm90BM x BN tile of C (BN = 128) in k-blocks of kSm90BK = 64
// bf16 (= 128 bytes, the 128B-swizzle row). Each operand k-block sits in shared memory as TMA writes it:
//   K-major (A not transposed, B transposed): one box {64 k, R rows}: row r at r*128 bytes, the 16-byte
//     chunks of each row XOR-permuted by (r % 8) inside each 1024-byte atom of 8 rows.
//   MN-major (A transposed, B not transposed): R/64 boxes {64 mn, 64 k} of 8 KiB each, box i holding
//     mn in [64i, 64i+64): k row at k*128 bytes, the same 128B swizzle.
// wgmma reads them through descriptors: K-major: SBO = 1024 (8-row groups), LBO unused (1); a k16 step
// is +32 bytes. MN-major: LBO = 8192 (the next 64 mn), SBO = 1024 (the next 8 k); a k16 step is +2048.
#pragma once
#include <cstdint>

#include "../common.h"

namespace lb {

constexpr int kSm90BM = 128;           // block rows (two consumer warpgroups of 64 rows)
constexpr int kSm90BK = 64;            // k per pipeline stage: one 128-byte swizzle row of bf16
constexpr int kSm90BoxBytes = 64 * 64 * 2;  // one MN-major TMA box {64 mn, 64 k}
constexpr int kSm90Group = 8;          // tile raster: groups of 8 block-rows share B tiles in L2

// ---- 128-byte swizzle (CU_TENSOR_MAP_SWIZZLE_128B, wgmma swizzle mode 1): inside every 1024-byte atom
// (8 rows of 128 bytes), the 16-byte chunk c of row r is stored at chunk c ^ r. On an address, bits
// [4,7) are XORed with bits [7,10); the atom must start on a 1024-byte boundary.
LB_HD uint32_t lb_sw128(uint32_t byte_off) { return byte_off ^ (((byte_off >> 7) & 7u) << 4); }

// Byte offset (from the operand tile base, 1024-aligned) where TMA puts element (row, k) of a K-major
// tile (row = m or n, k < 64) and element (mn, k) of an MN-major tile.
LB_HD uint32_t lb_sm90_kmajor_off(int row, int k) { return lb_sw128((uint32_t)(row * 128 + k * 2)); }
LB_HD uint32_t lb_sm90_mnmajor_off(int mn, int k) {
  return (uint32_t)((mn >> 6) * kSm90BoxBytes) + lb_sw128((uint32_t)(k * 128 + (mn & 63) * 2));
}

// ---- shared-memory matrix descriptor (64 bits): [0,14) start address >> 4, [16,30) leading-dimension
// byte offset >> 4, [32,46) stride-dimension byte offset >> 4, [49,52) base offset (0: atoms start on
// 1024-byte boundaries), [62,64) swizzle mode (0 none, 1 128B, 2 64B, 3 32B). Each address field is
// matrix-descriptor-encode(x) = (x & 0x3FFFF) >> 4.
struct LbWgmmaDesc {
  uint32_t start, lbo, sbo, base_offset, swizzle;  // bytes (start, lbo, sbo), raw fields (base, swizzle)
};
LB_HD uint64_t lb_wgmma_desc_encode(uint32_t start, uint32_t lbo, uint32_t sbo, uint32_t swizzle) {
  return (uint64_t)((start & 0x3FFFFu) >> 4) | ((uint64_t)((lbo & 0x3FFFFu) >> 4) << 16) |
         ((uint64_t)((sbo & 0x3FFFFu) >> 4) << 32) | ((uint64_t)(swizzle & 3u) << 62);
}
LB_HD LbWgmmaDesc lb_wgmma_desc_decode(uint64_t d) {
  return LbWgmmaDesc{(uint32_t)(d & 0x3FFFu) << 4, (uint32_t)((d >> 16) & 0x3FFFu) << 4,
                     (uint32_t)((d >> 32) & 0x3FFFu) << 4, (uint32_t)((d >> 49) & 7u), (uint32_t)(d >> 62)};
}

// Descriptor of one wgmma operand: the k16 step `ks` (0..3) of a k-block whose operand tile starts at
// shared address `tile` (1024-aligned), rows [row0, row0 + extent) of it (row0 = 0 or 64 for A's two
// warpgroups, 0 for B); mn_major selects the transposed layout (imm-trans = 1).
LB_HD uint64_t lb_sm90_desc(uint32_t tile, int row0, int ks, bool mn_major) {
  if (mn_major)
    return lb_wgmma_desc_encode(tile + (uint32_t)(row0 >> 6) * kSm90BoxBytes + (uint32_t)ks * 2048u, kSm90BoxBytes,
                                1024u, 1u);
  return lb_wgmma_desc_encode(tile + (uint32_t)row0 * 128u + (uint32_t)ks * 32u, 16u, 1024u, 1u);
}

// The address the tensor core reads for element (i, k) (i < 64 for A, < N for B; k < 16) of an operand
// described by `d`, from the canonical layouts of the PTX ISA for 16-bit types with 128B swizzle
// (units of T = 8 elements = 16 bytes):
//   K-major:  ((8, m), (T, 2k)) : ((8T, SBO), (1, T))   -> row i at (i%8)*128 + (i/8)*SBO, k at 2k bytes
//   MN-major: ((T, 8, m), (8, k)) : ((1, T, LBO), (8T, SBO)) -> i at 2(i%64) + (i/64)*LBO, k at (k%8)*128 + (k/8)*SBO
// then the swizzle applied to the address bits. A model of the hardware, for the tests only.
LB_HD uint32_t lb_wgmma_model_addr(uint64_t d, bool mn_major, int i, int k) {
  const LbWgmmaDesc f = lb_wgmma_desc_decode(d);
  uint32_t a;
  if (mn_major) a = f.start + (uint32_t)(i & 63) * 2u + (uint32_t)(i >> 6) * f.lbo + (uint32_t)(k & 7) * 128u + (uint32_t)(k >> 3) * f.sbo;
  else a = f.start + (uint32_t)(i & 7) * 128u + (uint32_t)(i >> 3) * f.sbo + (uint32_t)k * 2u;
  return f.swizzle == 1 ? lb_sw128(a) : a;
}

// ---- accumulator fragment of wgmma .m64nNk16 with f32 accumulators: thread t (0..127) of the warpgroup
// holds N/2 floats; register r belongs to column block j = r/4 (8 columns each). With warp w = t/32,
// g = (t%32)/4, q = t%4: r%4 = 0,1 -> row 16w + g, columns 8j + 2q + {0,1}; r%4 = 2,3 -> row 16w + g + 8.
LB_HD void lb_wgmma_acc_coord(int t, int r, int* row, int* col) {
  const int w = t >> 5, lane = t & 31, g = lane >> 2, q = lane & 3, j = r >> 2, h = (r >> 1) & 1;
  *row = 16 * w + g + 8 * h;
  *col = 8 * j + 2 * q + (r & 1);
}

// ---- tile raster: tile index t (0 .. nm*nn-1) -> block row bm and block column bn. Groups of `group`
// block-rows are walked column by column, so concurrently running blocks share B tiles (and the A
// rows of one group) in L2; the last group may be shorter. A bijection onto [0,nm) x [0,nn).
LB_HD void lb_sm90_tile(int t, int nm, int nn, int group, int* bm, int* bn) {
  const int per_group = group * nn;
  const int first = (t / per_group) * group;
  const int rows = nm - first < group ? nm - first : group;
  const int in = t % per_group;
  *bm = first + in % rows;
  *bn = in / rows;
}

// ---- shapes the Hopper path takes (the host falls back to mma.sync otherwise). TMA needs 16-byte
// aligned bases and row / batch strides that are multiples of 16 bytes, each stride covering the
// dimension inside it; dimensions up to 2^31 here. Returns 0 when supported, else a reason code:
enum LbSm90Reject : int {
  kSm90Ok = 0,
  kSm90Unaligned = 1,    // a or b base not 16-byte aligned
  kSm90Ld = 2,           // lda / ldb not a multiple of 8 elements, or smaller than the contiguous extent
  kSm90BatchStride = 3,  // batch > 1 with a batch stride not a positive multiple of 8 covering one matrix
  kSm90Empty = 4,        // M, N, K or batch < 1
};
LB_HD int lb_sm90_reject(int M, int N, int K, int batch, bool ta, bool tb, int64_t lda, int64_t ldb,
                         int64_t stride_a, int64_t stride_b, uint64_t a_addr, uint64_t b_addr) {
  if (M < 1 || N < 1 || K < 1 || batch < 1) return kSm90Empty;
  if ((a_addr & 15) || (b_addr & 15)) return kSm90Unaligned;
  const int64_t a_inner = ta ? M : K, a_outer = ta ? K : M;  // A stored (M,K), or (K,M) when transposed
  const int64_t b_inner = tb ? K : N, b_outer = tb ? N : K;  // B stored (K,N), or (N,K) when transposed
  if (lda % 8 || ldb % 8 || lda < a_inner || ldb < b_inner) return kSm90Ld;
  if (batch > 1 && (stride_a % 8 || stride_b % 8 || stride_a < lda * a_outer || stride_b < ldb * b_outer))
    return kSm90BatchStride;
  return kSm90Ok;
}

// ---- split K for the tensor-core paths (matmul.cu; LINKBERT_CUDA_SPLITK=0 turns it off): a TN GEMM (the
// weight gradients: A (K,M), B (K,N), K = the batch's tokens) whose 128x128 output tiles fill at most half
// the SMs runs as a batch of `slices` GEMMs over consecutive K ranges of kc, writing f32 partial products
// that a second kernel adds in slice order (deterministic) before the epilogue. Slice s reads
// A + s * stride_a and B + s * stride_b: kc whole rows of each, so the slices never overlap and stay on
// wgmma (lb_sm90_reject). slices = 1: not split. The slices fill at most two waves, divide K exactly into
// multiples of the 64-deep k-block, at least 256 deep, at most 16 of them.
// Measured on an H200 (bench/results/2026-11-27-h200-splitk.json): TN with 4-36 tiles 1.5-2.5x faster;
// TN with 108 tiles (0.8 of the SMs) 0.91x; NN/NT slices overlap, take mma.sync, and were 0.78x.
struct LbSplitK {
  int slices, kc;
  int64_t stride_a, stride_b;
};
LB_HD LbSplitK lb_splitk_plan(int M, int N, int K, int batch, bool ta, bool tb, int64_t lda, int64_t ldb, int sms) {
  LbSplitK s{1, K, 0, 0};
  if (!ta || tb || batch != 1 || K < 1024 || sms <= 0 || M < 1 || N < 1) return s;
  const int64_t tiles = (int64_t)((M + 127) / 128) * ((N + 127) / 128);
  if (2 * tiles > sms) return s;
  const int64_t cap = 2 * (int64_t)sms / tiles;
  for (int S = (int)(cap < 16 ? cap : 16); S >= 2; S--) {
    if (K % S) continue;
    const int kc = K / S;
    if (kc % 64 || kc < 256) continue;
    s.slices = S;
    s.kc = kc;
    s.stride_a = (int64_t)kc * lda;  // A (K,M): kc rows on
    s.stride_b = (int64_t)kc * ldb;  // B (K,N): kc rows on
    return s;
  }
  return s;
}

}  // namespace lb
