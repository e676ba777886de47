// matmul.cpp: CPU matmul (f32, blocked GEMM with packed panels and runtime-selected SIMD micro-kernels)
// and bias_backward. Everything GEMM lives in this one translation unit (gemm*.h are headers) so the
// build's source glob does not need a reconfigure.
#include <algorithm>
#include <atomic>
#include <type_traits>
#include <memory>
#include <thread>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "../common.h"
#include "../ops.h"
#include "gemm.h"
#include "gemm_kernels.h"
#include "cpu_util.h"
#include "threadpool.h"

namespace lb {
namespace gemm {
namespace {

struct Kernel {
  const char* name;
  int mr, nr;
  int mc, kc, nc;  // cache blocking: A block mc x kc lives in L2, B panel kc x nr in L1, B block kc x nc in L3
  UkrFn ukr;
  EpiFn epi;
};

const Kernel kGeneric{"generic 4x16", kGenMR, kGenNR, 128, 256, 4096, &ukr_generic, &epi_generic};
#if LB_GEMM_X86
const Kernel kAvx2{"avx2 6x16", kAvx2MR, kAvx2NR, 144, 256, 4096, &ukr_avx2, &epi_avx2};
// KC = 768: one C pass for K <= 768 and a third of the C traffic of KC = 256 for long K. With two
// threads the C read-modify-write traffic, not the FMAs, was the limit (KC = 256: ~0.7x OpenBLAS on
// 4096x3072x768; 768: ~0.85-1.0x, single thread 0.9 -> 1.0x). The B micro-panel (768 x 32) then lives
// in L2 next to the 516 KB A block (Zen 4/5, Intel server cores: 1-2 MB L2).
const Kernel kAvx512{"avx512 14x32", kAvx512MR, kAvx512NR, 168, 768, 4096, &ukr_avx512, &epi_avx512};
// bf16 operands (vdpbf16ps): kc counts k pairs, so a K block is 2 x 768 k of bf16, the same bytes.
const Kernel kAvx512Bf16{"avx512-bf16 14x32", kAvx512MR, kAvx512NR, 168, 768, 4096, &ukr_avx512_bf16, &epi_avx512};
#endif

const Kernel* detect() {
#if LB_GEMM_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return &kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &kAvx2;
#endif
  return &kGeneric;
}
const Kernel* g_kernel = detect();

// The packing routines: AVX-512 ones wherever the CPU has it (independent of the micro-kernel, except
// when a smaller kernel is forced, see force_kernel).
struct Packers {
  TpackFn tpack;
  CpackFn cpack;
};
const Packers kPackGeneric{&tpack_generic, &cpack_generic};
#if LB_GEMM_X86
const Packers kPackAvx512{&tpack_avx512, &cpack_avx512};
#endif
const Packers* detect_packers() {
#if LB_GEMM_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return &kPackAvx512;
#endif
  return &kPackGeneric;
}
const Packers* g_pack = detect_packers();

// Growable, 64-byte aligned scratch that never shrinks (no allocation per call once warm).
struct Scratch {
  std::vector<float> buf;
  float* get(size_t n) {
    if (buf.size() < n + 16) buf.resize(n + 16);
    return (float*)(((uintptr_t)buf.data() + 63) & ~(uintptr_t)63);
  }
};

// op(A)[i0:i0+mc, p0:p0+kc] -> panels of mr rows: dst[(ip * kc + k) * mr + r], zero rows past mc.
void pack_a(const MatmulParams& p, const float* A, int i0, int mc, int p0, int kc, int mr, float* dst) {
  if (!p.trans_a) {  // A (M,K): row i is contiguous in k, so the panel is a transpose
    for (int ip = 0; ip < mc; ip += mr)
      g_pack->tpack(A + (int64_t)(i0 + ip) * p.lda + p0, p.lda, std::min(mr, mc - ip), kc, dst + (int64_t)(ip / mr) * kc * mr, mr, mr);
    return;
  }
  // A (K,M): op(A) column k is contiguous in i, and a panel reads 1 line from each of kc rows. Panel by
  // panel, the next panel finds those lines in L2 again, unless the row stride is a multiple of 4 KB: then
  // the kc rows share 1/64 of the L2 sets and are evicted before the next panel reads them (M = 1024 ran
  // 25% below M = 1008). For such strides the block is copied 16 k at a time across all panels. (For other
  // strides that order measured up to 7% slower, so they keep the panel order.)
  const bool aliased = ((int64_t)p.lda * (int64_t)sizeof(float)) % 4096 == 0;
  const int kChunk = aliased ? 16 : kc;
  for (int k0 = 0; k0 < kc; k0 += kChunk) {
    const int kk = std::min(kChunk, kc - k0);
    for (int ip = 0; ip < mc; ip += mr)
      g_pack->cpack(A + (int64_t)(p0 + k0) * p.lda + i0 + ip, p.lda, std::min(mr, mc - ip), kk,
                    dst + (int64_t)(ip / mr) * kc * mr + (int64_t)k0 * mr, mr, mr);
  }
}

// op(B)[p0:p0+kc, j0+jp0*nr : ...] for panels [jp0, jp1) -> dst[(jp * kc + k) * nr + c], zero columns past nc.
void pack_b(const MatmulParams& p, const float* B, int j0, int nc, int p0, int kc, int nr, int64_t jp0, int64_t jp1,
            float* dst) {
  for (int64_t jp = jp0; jp < jp1; jp++) {
    const int jj = (int)jp * nr;
    const int cols = std::min(nr, nc - jj);
    float* d = dst + jp * kc * nr;
    if (!p.trans_b) {  // B (K,N): op(B) row k is contiguous in j
      for (int k = 0; k < kc; k++) {
        const float* src = B + (int64_t)(p0 + k) * p.ldb + j0 + jj;
        float* dk = d + k * nr;
        if (cols == nr) std::memcpy(dk, src, sizeof(float) * nr);
        else {
          for (int c = 0; c < cols; c++) dk[c] = src[c];
          for (int c = cols; c < nr; c++) dk[c] = 0.0f;
        }
      }
    } else {  // B (N,K) (nn.Linear weight): column j of op(B) is row j of B; transpose 16 rows at a time
      for (int h = 0; h < nr; h += 16) {
        const int width = std::min(16, nr - h), rows = std::max(0, std::min(width, cols - h));
        g_pack->tpack(B + (int64_t)(j0 + jj + h) * p.ldb + p0, p.ldb, rows, kc, d + h, nr, width);
      }
    }
  }
}

// bf16 operands: panels of k-pair words. dst[q * width + t] = X(t, 2(p0+q)) | X(t, 2(p0+q)+1) << 16 for
// t < n (zero words for n <= t < width), X(t, k) = src[t * st + k * sk] and 0 for k >= K. One of st, sk is 1.
void pack_pairs(const uint16_t* src, int64_t st, int64_t sk, int n, int p0, int kc, int K, int width, uint32_t* dst) {
  // Pairs contiguous in memory (sk == 1, even row stride, 4-byte aligned rows): each row is a row of
  // 32-bit words, so the full pairs are the f32 transposing pack of those words (bf16 NN/NT: +8-20%).
  // (The other layout, two rows interleaved, measured slower with an AVX-512 loop than this scalar one.)
  if (sk == 1 && st % 2 == 0 && ((uintptr_t)src & 3) == 0) {
    const int full = std::max(0, std::min(kc, K / 2 - p0));
    if (full > 0) {
      for (int h = 0; h < width; h += 16)
        g_pack->tpack(reinterpret_cast<const float*>(src + h * st) + p0, st / 2, std::max(0, std::min(16, n - h)), full,
                      reinterpret_cast<float*>(dst) + h, width, std::min(16, width - h));
      dst += (int64_t)full * width;
      p0 += full;
      kc -= full;
    }
  }
  for (int q = 0; q < kc; q++) {
    const int64_t k = 2 * (int64_t)(p0 + q);
    uint32_t* d = dst + (int64_t)q * width;
    if (k + 1 < K) {
      const uint16_t* r0 = src + k * sk;
      const uint16_t* r1 = r0 + sk;
      for (int t = 0; t < n; t++) d[t] = (uint32_t)r0[t * st] | (uint32_t)r1[t * st] << 16;
    } else if (k < K) {
      const uint16_t* r0 = src + k * sk;
      for (int t = 0; t < n; t++) d[t] = r0[t * st];
    } else {
      for (int t = 0; t < n; t++) d[t] = 0;
    }
    for (int t = n; t < width; t++) d[t] = 0;
  }
}
#if LB_GEMM_X86
LB_AVX512_BEGIN
// pack_a_bf16 of a transposed A (K, M) for the k pairs that have both rows: rows 2q and 2q + 1 of the
// block (mc values each) interleaved into 32-bit words 16 at a time, then dealt out mr per panel. Per
// panel, as pack_pairs does it, the interleave is a scalar loop of mr values.
LB_AVX512 void pack_a_bf16_trans_avx512(const uint16_t* A, int64_t lda, int i0, int mc, int p0, int q1, int kc, int mr,
                                        uint32_t* dst) {
  alignas(64) uint32_t row[1024 + 16];  // mc <= kMC_max (168 here) fits
  for (int q = 0; q < q1; q++) {
    const uint16_t* r0 = A + (int64_t)2 * (p0 + q) * lda + i0;
    const uint16_t* r1 = r0 + lda;
    cpu::for_each16(0, mc, [&](int64_t t, __mmask16 m) {
      const __m256i a = m == 0xffff ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r0 + t)) : _mm256_maskz_loadu_epi16(m, r0 + t);
      const __m256i b = m == 0xffff ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r1 + t)) : _mm256_maskz_loadu_epi16(m, r1 + t);
      _mm512_store_si512(row + t, _mm512_or_si512(_mm512_cvtepu16_epi32(a), _mm512_slli_epi32(_mm512_cvtepu16_epi32(b), 16)));
    });
    for (int ip = 0; ip < mc; ip += mr) {  // zero words past mc (the masked loads above read them as 0)
      const __mmask16 m = cpu::tail_mask(mr);
      _mm512_mask_storeu_epi32(dst + (int64_t)(ip / mr) * kc * mr + (int64_t)q * mr, m, _mm512_maskz_loadu_epi32(cpu::tail_mask(std::max(0, mc - ip)), row + ip));
    }
  }
}
LB_AVX512_END
#endif

// pack_a / pack_b for bf16 operands; p0 and kc count k pairs, the layouts are those of the f32 panels
void pack_a_bf16(const MatmulParams& p, const uint16_t* A, int i0, int mc, int p0, int kc, int mr, float* dst) {
#if LB_GEMM_X86
  if (p.trans_a && mr <= 16 && mc <= 1024 && cpu::has_avx512()) {
    // the pairs with both rows (q < q1) vectorised; the rest (an odd K's last k, zero pairs past K) as before
    const int q1 = std::max(0, std::min(kc, p.K / 2 - p0));
    pack_a_bf16_trans_avx512(A, p.lda, i0, mc, p0, q1, kc, mr, reinterpret_cast<uint32_t*>(dst));
    if (q1 == kc) return;
    for (int ip = 0; ip < mc; ip += mr)
      pack_pairs(A + i0 + ip, 1, p.lda, std::min(mr, mc - ip), p0 + q1, kc - q1, p.K, mr,
                 reinterpret_cast<uint32_t*>(dst) + (int64_t)(ip / mr) * kc * mr + (int64_t)q1 * mr);
    return;
  }
#endif
  for (int ip = 0; ip < mc; ip += mr) {
    uint32_t* d = reinterpret_cast<uint32_t*>(dst) + (int64_t)(ip / mr) * kc * mr;
    if (!p.trans_a) pack_pairs(A + (int64_t)(i0 + ip) * p.lda, p.lda, 1, std::min(mr, mc - ip), p0, kc, p.K, mr, d);
    else pack_pairs(A + i0 + ip, 1, p.lda, std::min(mr, mc - ip), p0, kc, p.K, mr, d);
  }
}
void pack_b_bf16(const MatmulParams& p, const uint16_t* B, int j0, int nc, int p0, int kc, int nr, int64_t jp0, int64_t jp1,
                 float* dst) {
  for (int64_t jp = jp0; jp < jp1; jp++) {
    const int jj = (int)jp * nr, cols = std::min(nr, nc - jj);
    uint32_t* d = reinterpret_cast<uint32_t*>(dst) + jp * kc * nr;
    if (!p.trans_b) pack_pairs(B + j0 + jj, 1, p.ldb, cols, p0, kc, p.K, nr, d);
    else pack_pairs(B + (int64_t)(j0 + jj) * p.ldb, p.ldb, 1, cols, p0, kc, p.K, nr, d);
  }
}

// Split K into this many parts (see gemm_one): where K is long and the output small next to it.
int split_parts(const MatmulParams& p) {
  if (p.epilogue != Epilogue::None) return 1;
  return p.K >= 2048 && p.K >= std::max(p.M, p.N) ? 2 : 1;
}

// Packed B for all K blocks of columns [jc, jc+nc): block pc starts at pc * npad (npad = nc rounded up
// to nr), and within it panel jp at jp * kc * nr; shared by all threads, packed on first use.
constexpr int64_t kMaxPackedB = (int64_t)16 << 20;  // floats (64 MiB); wider N is split into jc blocks
constexpr int64_t kMaxSharedA = (int64_t)4 << 20;   // floats (16 MiB): A packed once for all column groups

// A growable array of atomics (thread_local at its users: only grows), each set to v by get().
template <class T>
struct AtomicArray {
  std::unique_ptr<std::atomic<T>[]> buf;
  int64_t cap = 0;
  std::atomic<T>* get(int64_t n, T v) {
    if (cap < n) {
      buf.reset(new std::atomic<T>[n]);
      cap = n;
    }
    for (int64_t i = 0; i < n; i++) buf[i].store(v, std::memory_order_relaxed);
    return buf.get();
  }
};
// A shared pack made by whichever thread needs it first (st: 0 not packed, 1 being packed, 2 ready);
// the others wait for it.
template <class F>
void pack_once(std::atomic<uint8_t>& st, F&& pack) {
  if (st.load(std::memory_order_acquire) == 2) return;
  uint8_t expected = 0;
  if (st.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
    pack();
    st.store(2, std::memory_order_release);
    return;
  }
  for (int spins = 0; st.load(std::memory_order_acquire) != 2; spins++)
    if (spins > 256) std::this_thread::yield();  // the packer may have been descheduled
}

#if LB_GEMM_X86
LB_AVX512_BEGIN
// A finished f32 tile (rows, cols; row stride nr) rounded into bf16 C (row stride ldc): times alpha and
// plus bias where the micro-kernel left them out (edge tiles, as the f32 write-back does), and with
// bias+GELU the tile goes to pre (bf16) and gelu_table16 of it to C, as epi_avx512 computes it.
LB_AVX512 void store_tile_bf16(const float* tile, int nr, int rows, int cols, float alpha, const float* bias, bool gelu,
                               uint16_t* c, uint16_t* pre, int64_t ldc) {
  const __m512 va = _mm512_set1_ps(alpha);
  for (int i = 0; i < rows; i++) {
    cpu::for_each16(0, cols, [&](int64_t j, __mmask16 m) {
      __m512 v[1] = {cpu::maskz_loadu(m, tile + i * nr + j)};
      if (alpha != 1.0f) v[0] = _mm512_mul_ps(va, v[0]);
      if (bias) v[0] = _mm512_add_ps(v[0], cpu::maskz_loadu(m, bias + j));
      if (pre) cpu::store16(pre + i * ldc + j, m, v[0]);
      if (gelu) gelu_table16<1>(v);
      cpu::store16(c + i * ldc + j, m, v[0]);
    });
  }
}
LB_AVX512_END
#endif

// One batch item. `threaded` = use the pool inside (false when the caller parallelises over batch).
// BF16: A and B are bf16 (C and pre_gelu f32) and the driver's k counts pairs of k (see pack_pairs).
// C16, P16: C and pre_gelu in bf16 instead, rounded as each tile finishes; only where K is one block
// and beta is 0 (the tile is then final when the micro-kernel leaves it): returns false, having done
// nothing, otherwise.
template <bool BF16>
bool gemm_one(const MatmulParams& p, int bi, bool threaded, const Kernel& kn, uint16_t* C16 = nullptr, uint16_t* P16 = nullptr) {
  using Elem = std::conditional_t<BF16, uint16_t, float>;
  const Elem* A = (const Elem*)p.a + (int64_t)bi * p.stride_a;
  const Elem* B = (const Elem*)p.b + (int64_t)bi * p.stride_b;
  float* C = (float*)p.c + (int64_t)bi * p.stride_c;
  float* P = p.pre_gelu ? (float*)p.pre_gelu + (int64_t)bi * p.stride_c : nullptr;
  const int mr = kn.mr, nr = kn.nr;
  const int M = p.M, N = p.N, K = BF16 ? (p.K + 1) / 2 : p.K;
  // Equal K blocks (K = 1024 -> 2 x 512, not 768 + 256), a multiple of 8; with split K (below) as many
  // blocks in each part: K = 2048 went in 3 blocks of 688, one for part 0 and two for part 1, and the
  // core on the short part waited (with 4 blocks of 512, the demo's 128 x 512 x 2048 weight gradient
  // 216 -> 244 GFLOP/s and 512 x 128 x 2048 300 -> 312 at the median of 4 alternations; its training
  // step 1.01-1.04x).
  const int parts = split_parts(p);
  const int n_pc0 = ((K + kn.kc - 1) / kn.kc + parts - 1) / parts * parts;
  const int KC = std::min(kn.kc, ((K + n_pc0 - 1) / n_pc0 + 7) / 8 * 8);
  const int n_pc = (K + KC - 1) / KC;
  if (C16 && (n_pc != 1 || p.beta != 0.0f)) return false;
  const int nthreads = threaded ? cpu_num_threads() : 1;
  // Split K (the weight gradients: K = tokens, M and N a layer's width): the K blocks go in n_split
  // contiguous parts, each a set of tasks of its own. Part 0 accumulates into C; part s > 0 into its own
  // (M, N) scratch, which the task that finishes a tile last adds to C in part order. Threads on
  // different parts pack and stream their own B panels and A rows instead of sharing them (2 cores,
  // 768 x 256 x 4096: +10%). The split follows from the shape alone, so the bits do not depend on the
  // thread count. Not with an epilogue, which needs the finished sum.
  const int n_split = n_pc >= parts ? parts : 1;
  thread_local Scratch cscratch;
  float* csplit = n_split > 1 ? cscratch.get((size_t)(n_split - 1) * M * N) : nullptr;  // (n_split-1, M, N)
  const int64_t npanels_all = (N + nr - 1) / nr;
  const int64_t NC = std::max<int64_t>(1, std::min<int64_t>(npanels_all, kMaxPackedB / ((int64_t)K * nr))) * nr;

  thread_local Scratch bscratch;
  float* bpack = bscratch.get((size_t)(K * NC));  // (n_pc, NC/nr panels, kc, nr), owned by the calling thread

  // Smaller MC when M is small keeps every thread busy.
  int MC = kn.mc;
  while (MC > 2 * mr && (int64_t)((M + MC - 1) / MC) * npanels_all < 8 * nthreads) MC -= mr;

  for (int jc = 0; jc < N; jc += (int)NC) {
    const int nc = (int)std::min<int64_t>(NC, N - jc);
    const int64_t npanels = (nc + nr - 1) / nr, npad = npanels * nr;
    // B panels are packed lazily by whichever thread needs one first (state per (K block, panel):
    // 0 unpacked, 1 being packed, 2 ready), so a GEMM is one parallel region: every extra region costs
    // a worker wake-up on the critical path, which is milliseconds on a loaded machine.
    thread_local AtomicArray<uint8_t> bstate_buf;
    std::atomic<uint8_t>* bstate = bstate_buf.get((int64_t)n_pc * npanels, 0);
    auto ensure_b = [&](int pc, int kc, int64_t jp) {
      pack_once(bstate[(int64_t)(pc / KC) * npanels + jp], [&] {
        if constexpr (BF16) pack_b_bf16(p, B, jc, nc, pc, kc, nr, jp, jp + 1, bpack + (int64_t)pc * npad);
        else pack_b(p, B, jc, nc, pc, kc, nr, jp, jp + 1, bpack + (int64_t)pc * npad);
      });
    };

    // TN (A stored (K, M), the weight gradients): op(A) at k is row k of A, so a panel's mr values for
    // one k lie side by side there and the micro-kernel reads A in place (step lda) instead of a packed
    // copy; packing took a quarter of the time at K = 4096. Measured faster for 4 KB-multiple strides
    // too (1024 x 256 x 4096: +15%). Not for a last panel short of mr rows: the kernel reads mr values,
    // past the end of A's last row, so that one is packed.
    const bool direct_a = !BF16 && p.trans_a;
    const int n_ic = (M + MC - 1) / MC;
    // Column groups: enough tasks (~8 per thread) for dynamic balancing, each at least 4 panels wide.
    int n_jg = 1;
    if (threaded)
      n_jg = (int)std::max<int64_t>(1, std::min<int64_t>(npanels / 4, (8 * nthreads + n_ic - 1) / n_ic));
    const int64_t ntiles = (int64_t)n_ic * n_jg, ntasks = ntiles * n_split;
    // With several column groups each task packs its row block of A again: n_jg times over. For a bf16
    // transposed A (the weight gradients) that pack is a scalar interleave of k pairs from two rows,
    // which cost about as much as the products at 256 x 1024 x 4096 TN (8 column groups): there A is
    // packed once per (row block, K block) and shared like B, where that fits (0.86-0.95x the time).
    // Not elsewhere: shared f32 packs (AVX-512 transposes, cheap) made 256 x 1024 x 4096 NN 1.03-1.06x
    // slower, read from the other core's cache, and 2 column groups (256 x 256 x 4096 TN) gained nothing.
    const int64_t a_block = (int64_t)(MC + mr) * KC;  // floats per packed (row block, K block)
    const bool share_a = BF16 && p.trans_a && n_jg >= 4 && (int64_t)n_ic * n_pc * a_block <= kMaxSharedA;
    thread_local Scratch ashared_buf;
    float* ashared = share_a ? ashared_buf.get((size_t)(n_ic * n_pc * a_block)) : nullptr;  // (n_ic, n_pc) blocks
    thread_local AtomicArray<uint8_t> astate_buf;
    std::atomic<uint8_t>* astate = share_a ? astate_buf.get((int64_t)n_ic * n_pc, 0) : nullptr;
    // the packed block (icb, K block at pc), as ensure_b (share_a implies BF16)
    auto ensure_a = [&](int icb, int ic, int mc, int pc, int kc) -> const float* {
      const int64_t idx = (int64_t)icb * n_pc + pc / KC;
      float* dst = ashared + idx * a_block;
      if constexpr (BF16) pack_once(astate[idx], [&] { pack_a_bf16(p, A, ic, mc, pc, kc, mr, dst); });
      return dst;
    };
    // split K: parts still to finish, per tile
    thread_local AtomicArray<int> pending_buf;
    std::atomic<int>* pending = n_split > 1 ? pending_buf.get(ntiles, n_split) : nullptr;
    std::atomic<int64_t> next{0};
    auto worker = [&](int64_t, int64_t) {
      thread_local Scratch ascratch;
      float* apack = ascratch.get((size_t)(MC + mr) * KC);  // (MC/mr panels, kc, mr)
      alignas(64) float tile[32 * 32];                       // edge tiles: (mr, nr)
      for (;;) {
        const int64_t t = next.fetch_add(1, std::memory_order_relaxed);
        if (t >= ntasks) break;
        // parts interleaved (consecutive claims go to different parts), then column-group major
        const int part = (int)(t % n_split);
        const int64_t ti = t / n_split;
        const int jg = (int)(ti / n_ic), icb = (int)(ti % n_ic);
        const int ic = icb * MC, mc = std::min(MC, M - ic);
        const int64_t jp0 = npanels * jg / n_jg, jp1 = npanels * (jg + 1) / n_jg;
        const int pc_begin = (int)((int64_t)n_pc * part / n_split) * KC;
        const int pc_end = std::min<int64_t>(K, (int64_t)n_pc * (part + 1) / n_split * KC);
        float* Cp = part == 0 ? C : csplit + (int64_t)(part - 1) * M * N;  // this part's sum
        const int64_t ldc = part == 0 ? p.ldc : N;
        for (int pc = pc_begin; pc < pc_end; pc += KC) {
          const int kc = std::min(KC, K - pc);
          const bool last = pc + kc == K;
          // later K blocks accumulate onto C; a part past the first starts its scratch from 0
          const float beta = pc == pc_begin ? (part == 0 ? p.beta : 0.0f) : 1.0f;
          const int full = direct_a ? mc / mr * mr : 0;  // direct_a: rows read in place
          const float* apk = apack;
          if (share_a) apk = ensure_a(icb, ic, mc, pc, kc);
          else if constexpr (BF16) pack_a_bf16(p, A, ic, mc, pc, kc, mr, apack);
          else if (full < mc) pack_a(p, A, ic + full, mc - full, pc, kc, mr, apack);
          const float* bblock = bpack + (int64_t)pc * npad;
          for (int64_t jp = jp0; jp < jp1; jp++) {
            const int j = jc + (int)jp * nr, cols = std::min(nr, N - j);
            ensure_b(pc, kc, jp);
            const float* bp = bblock + jp * kc * nr;
            for (int ir = 0; ir < mc; ir += mr) {
              const int rows = std::min(mr, mc - ir);
              const bool in_place = ir < full;
              const float* ap = in_place ? (const float*)A + (int64_t)pc * p.lda + ic + ir : apk + (int64_t)((ir - full) / mr) * kc * mr;
              const int64_t as = in_place ? p.lda : mr;
              float* c = Cp + (int64_t)(ic + ir) * ldc + j;
              const float* bias = last && p.epilogue != Epilogue::None ? p.bias + j : nullptr;
#if LB_GEMM_X86
              if (C16) {  // one K block: the tile is final here
                const bool whole = rows == mr && cols == nr;
                kn.ukr(kc, ap, as, bp, tile, nr, whole ? p.alpha : 1.0f, 0.0f, whole ? bias : nullptr);
                const int64_t o = (int64_t)(ic + ir) * p.ldc + j;
                store_tile_bf16(tile, nr, rows, cols, whole ? 1.0f : p.alpha, whole ? nullptr : bias,
                                p.epilogue == Epilogue::BiasGelu, C16 + o, P16 ? P16 + o : nullptr, p.ldc);
                continue;
              }
#endif
              if (rows == mr && cols == nr) {
                kn.ukr(kc, ap, as, bp, c, ldc, p.alpha, beta, bias);
              } else {
                kn.ukr(kc, ap, as, bp, tile, nr, 1.0f, 0.0f, nullptr);
                for (int r = 0; r < rows; r++) {
                  float* cr = c + (int64_t)r * ldc;
                  const float* tr = tile + r * nr;
                  for (int q = 0; q < cols; q++) {
                    float v = p.alpha * tr[q];
                    if (bias) v += bias[q];
                    cr[q] = beta == 0.0f ? v : v + beta * cr[q];
                  }
                }
              }
              if (last && p.epilogue == Epilogue::BiasGelu)
                kn.epi(c, p.ldc, P ? P + (int64_t)(ic + ir) * p.ldc + j : nullptr, rows, cols);
            }
          }
        }
        if (n_split > 1 && pending[ti].fetch_sub(1, std::memory_order_acq_rel) == 1) {
          // this tile's last part: C += the other parts' sums, in part order
          const int64_t j_lo = jc + jp0 * nr, j_hi = std::min<int64_t>(jc + jp1 * nr, (int64_t)jc + nc);
          for (int r = ic; r < ic + mc; r++) {
            float* cr = C + (int64_t)r * p.ldc;
            for (int sp = 1; sp < n_split; sp++) {
              const float* sr = csplit + (int64_t)(sp - 1) * M * N + (int64_t)r * N;
              for (int64_t q = j_lo; q < j_hi; q++) cr[q] += sr[q];
            }
          }
        }
      }
#if LB_GEMM_X86
      if (P) _mm_sfence();  // the epilogue's streamed pre-activation stores, before the join
#endif
    };
    // One claim loop per thread; tasks are handed out one at a time, so a descheduled thread delays
    // the GEMM by at most one task.
    if (threaded) parallel_for(nthreads, 1, worker);
    else worker(0, 1);
  }
  return true;
}

}  // namespace

const char* kernel_name() { return g_kernel->name; }

bool force_kernel(const char* name) {
  // Forcing a smaller ISA also drops the AVX-512 packing, as a machine without it would run.
  if (std::strcmp(name, "generic") == 0) { g_kernel = &kGeneric; g_pack = &kPackGeneric; return true; }
#if LB_GEMM_X86
  __builtin_cpu_init();
  if (std::strcmp(name, "avx2") == 0 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    g_kernel = &kAvx2;
    g_pack = &kPackGeneric;
    return true;
  }
  if (std::strcmp(name, "avx512") == 0 && __builtin_cpu_supports("avx512f")) {
    g_kernel = &kAvx512;
    g_pack = &kPackAvx512;
    return true;
  }
#endif
  return false;
}

void sgemm(const MatmulParams& p) {
  const Kernel& kn = *g_kernel;
  const int nthreads = cpu_num_threads();
  const double flops = 2.0 * p.M * p.N * p.K;
  // Many small items (attention-sized): one item per task. Otherwise thread inside each item.
  if (p.batch >= 2 * nthreads && flops < 64.0 * 1024 * 1024) {
    parallel_for(p.batch, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; b++) gemm_one<false>(p, (int)b, false, kn);
    });
  } else {
    for (int b = 0; b < p.batch; b++) gemm_one<false>(p, b, nthreads > 1 && flops >= 2.0 * 64 * 64 * 64, kn);
  }
}

bool has_avx512_bf16() {
#if LB_GEMM_X86
  // LINKBERT_CPU_BF16_DOT=0 (read once) takes the widening path on any CPU (tests, comparisons)
  static const bool yes = [] {
    const char* env = std::getenv("LINKBERT_CPU_BF16_DOT");
    if (env && std::strcmp(env, "0") == 0) return false;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
  }();
  return yes && cpu::g_isa_cap.load(std::memory_order_relaxed) >= 2;
#else
  return false;
#endif
}

// (rows, cols) with row stride lds -> (rows, cols) with row stride ldd, bf16 <-> f32; 16 lanes at a time
// where the CPU has AVX-512 (cpu::convert16, which rounds as lb_f32_to_bf16 does)
template <class S, class D>
void convert_rows(const S* src, int64_t lds, int64_t rows, int64_t cols, D* dst, int64_t ldd) {
  parallel_for(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, cols)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
#if LB_X86_SIMD
      if (cpu::has_avx512()) {
        cpu::convert16(src + r * lds, dst + r * ldd, cols);
        continue;
      }
#endif
      for (int64_t c = 0; c < cols; c++) dst[r * ldd + c] = cpu::from_f32<D>(cpu::to_f32(src[r * lds + c]));
    }
  });
}

// bf16 A and B; C (and pre_gelu) f32 or bf16. With AVX512-BF16 the packed driver runs on k pairs
// (vdpbf16ps); otherwise A and B are widened to f32 first. A bf16 C is accumulated in an f32 buffer
// over all of K and rounded once at the end, as ref does.
void sgemm_bf16(const MatmulParams& p) {
  const int nthreads = cpu_num_threads();
  const bool threaded = nthreads > 1 && 2.0 * p.M * p.N * p.K >= 2.0 * 64 * 64 * 64;
  const bool c16 = p.c_dtype == DType::BF16;
  thread_local std::vector<float> cbuf, pbuf, abuf, bbuf;
  for (int b = 0; b < p.batch; b++) {
    MatmulParams q = p;
    q.batch = 1;
    q.stride_a = q.stride_b = q.stride_c = 0;
    q.a = (const uint16_t*)p.a + (int64_t)b * p.stride_a;
    q.b = (const uint16_t*)p.b + (int64_t)b * p.stride_b;
#if LB_GEMM_X86
    // bf16 C straight from the tiles where K is one block (the forward projections and most input
    // gradients); gemm_one declines the rest, which go through the f32 buffer below
    if (c16 && has_avx512_bf16() &&
        gemm_one<true>(q, 0, threaded, kAvx512Bf16, (uint16_t*)p.c + (int64_t)b * p.stride_c,
                       p.pre_gelu ? (uint16_t*)p.pre_gelu + (int64_t)b * p.stride_c : nullptr))
      continue;
#endif
    if (c16) {
      uint16_t* c = (uint16_t*)p.c + (int64_t)b * p.stride_c;
      if ((int64_t)cbuf.size() < (int64_t)p.M * p.N) cbuf.resize((size_t)p.M * p.N);
      if (p.beta != 0.0f) convert_rows(c, p.ldc, p.M, p.N, cbuf.data(), (int64_t)p.N);
      q.c = cbuf.data();
      q.ldc = p.N;
      if (p.pre_gelu) {
        if ((int64_t)pbuf.size() < (int64_t)p.M * p.N) pbuf.resize((size_t)p.M * p.N);
        q.pre_gelu = pbuf.data();
      }
    } else {
      q.c = (float*)p.c + (int64_t)b * p.stride_c;
      q.pre_gelu = p.pre_gelu ? (float*)p.pre_gelu + (int64_t)b * p.stride_c : nullptr;
    }
    q.c_dtype = DType::F32;
#if LB_GEMM_X86
    if (has_avx512_bf16()) {
      gemm_one<true>(q, 0, threaded, kAvx512Bf16);
    } else
#endif
    {
      // widen A and B (their used extent: (rows - 1) * ld + cols elements) and run the f32 driver
      const int64_t ra = p.trans_a ? p.K : p.M, ca = p.trans_a ? p.M : p.K;
      const int64_t rb = p.trans_b ? p.N : p.K, cb = p.trans_b ? p.K : p.N;
      if ((int64_t)abuf.size() < ra * ca) abuf.resize((size_t)(ra * ca));
      if ((int64_t)bbuf.size() < rb * cb) bbuf.resize((size_t)(rb * cb));
      convert_rows((const uint16_t*)q.a, p.lda, ra, ca, abuf.data(), ca);
      convert_rows((const uint16_t*)q.b, p.ldb, rb, cb, bbuf.data(), cb);
      q.a = abuf.data();
      q.b = bbuf.data();
      q.lda = ca;
      q.ldb = cb;
      q.ab_dtype = DType::F32;
      gemm_one<false>(q, 0, threaded, *g_kernel);
    }
    if (c16) {
      uint16_t* c = (uint16_t*)p.c + (int64_t)b * p.stride_c;
      convert_rows(cbuf.data(), (int64_t)p.N, p.M, p.N, c, p.ldc);
      if (p.pre_gelu) convert_rows(pbuf.data(), (int64_t)p.N, p.M, p.N, (uint16_t*)p.pre_gelu + (int64_t)b * p.stride_c, p.ldc);
    }
  }
}

}  // namespace gemm

bool cpu_bf16_dot() { return gemm::has_avx512_bf16(); }

void matmul_forward_cpu(const MatmulParams& p) {
  if (p.epilogue != Epilogue::None && !p.bias) throw std::runtime_error("matmul: epilogue needs a bias");
  if (p.ab_dtype == DType::BF16) return gemm::sgemm_bf16(p);
  if (p.ab_dtype != DType::F32 || p.c_dtype != DType::F32) throw std::runtime_error("matmul: cpu runs f32 x f32 -> f32 or bf16 x bf16 -> f32 / bf16");
  gemm::sgemm(p);
}

// dbias[n] += sum_m dout[m, n]. Rows are cut into fixed chunks of kRows (independent of the thread
// count); each chunk streams its rows contiguously into fp64 partial sums, and the partials are added in
// chunk order, so the result is bit-identical for any number of threads. (Column blocks would read with
// an N-float stride: a new page per row.)
namespace {
constexpr int64_t kBiasRows = 256;
// acc[j] = sum over rows [m0, m1) of d[m, j] (j < N, row stride ld), in row order; eight rows per pass over
// acc: its loads and stores then cost less per row than with four (1.2-1.4x at 4096 x 3072, 1.25x at
// 1000 x 777, 1.0-1.15x at 640 x 30522, within noise at 4096 x 1024, two threads, same-process A/B; the
// adds keep their order, so the bits are the same).
// T: float or bf16 bits (widened exactly to f32, then to fp64).
LB_ALWAYS_INLINE double widen(float v) { return (double)v; }
LB_ALWAYS_INLINE double widen(uint16_t v) { return (double)lb_bf16_to_f32(v); }
template <class T>
LB_ALWAYS_INLINE void column_sums_body(const T* d, int64_t N, int64_t ld, int64_t m0, int64_t m1, double* __restrict acc) {
  for (int64_t j = 0; j < N; j++) acc[j] = 0.0;
  int64_t m = m0;
  for (; m + 8 <= m1; m += 8) {
    const T* __restrict r0 = d + m * ld;
    for (int64_t j = 0; j < N; j++) {
      const double s4 = (((acc[j] + widen(r0[j])) + widen(r0[j + ld])) + widen(r0[j + 2 * ld])) + widen(r0[j + 3 * ld]);
      acc[j] = (((s4 + widen(r0[j + 4 * ld])) + widen(r0[j + 5 * ld])) + widen(r0[j + 6 * ld])) + widen(r0[j + 7 * ld]);
    }
  }
  for (; m < m1; m++) {  // the rows left (fewer than 8: the chunks are multiples of 8 but the last)
    const T* __restrict r0 = d + m * ld;
    for (int64_t j = 0; j < N; j++) acc[j] += widen(r0[j]);
  }
}
template <class T>
using ColumnSumsFn = void (*)(const T*, int64_t, int64_t, int64_t, int64_t, double*);
template <class T>
void column_sums_generic(const T* d, int64_t N, int64_t ld, int64_t m0, int64_t m1, double* acc) {
  column_sums_body(d, N, ld, m0, m1, acc);
}
#if LB_GEMM_X86
template <class T>
__attribute__((target("avx512f"))) void column_sums_avx512(const T* d, int64_t N, int64_t ld, int64_t m0, int64_t m1, double* acc) {
  column_sums_body(d, N, ld, m0, m1, acc);
}
template <class T>
__attribute__((target("avx2"))) void column_sums_avx2(const T* d, int64_t N, int64_t ld, int64_t m0, int64_t m1, double* acc) {
  column_sums_body(d, N, ld, m0, m1, acc);
}
#endif
// the variant for what the CPU has, at most set_cpu_isa's cap
template <class T>
ColumnSumsFn<T> column_sums_for_cpu() {
#if LB_GEMM_X86
  const int level = cpu::clone_level();
  if (level >= 2) return &column_sums_avx512<T>;
  if (level == 1) return &column_sums_avx2<T>;
#endif
  return &column_sums_generic<T>;
}
}  // namespace

const char* set_cpu_isa(const char* name) {
  int level;
  if (std::strcmp(name, "avx512") == 0) level = 2;
  else if (std::strcmp(name, "avx2") == 0) level = 1;
  else if (std::strcmp(name, "generic") == 0) level = 0;
  else return "unknown ISA: expected \"avx512\", \"avx2\" or \"generic\"";
#if LB_GEMM_X86
  __builtin_cpu_init();
  // level 2 is the default cap, "all the CPU has": AVX-512F is enough (the memory-bound paths check
  // their subsets themselves, cpu::has_avx512), so "avx512" restores the default on any AVX-512 CPU
  if (level == 2 && !__builtin_cpu_supports("avx512f")) return "this CPU has no AVX-512F";
  if (level == 1 && !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) return "this CPU has no AVX2 + FMA";
#else
  if (level > 0) return "not an x86 CPU: only \"generic\"";
#endif
  // one op at a time: the caller sets this between ops, never while one runs
  cpu::g_isa_cap.store(level, std::memory_order_relaxed);
  gemm::force_kernel(name);
  return nullptr;
}

void bias_backward_cpu(const BiasBackwardParams& p) {
  if (p.dtype != DType::F32 && p.dtype != DType::BF16) throw std::runtime_error("bias_backward: cpu supports f32 and bf16");
  const int64_t M = p.M, N = p.N, nchunks = (M + kBiasRows - 1) / kBiasRows;
  thread_local std::vector<double> partial;  // (nchunks, N)
  if ((int64_t)partial.size() < nchunks * N) partial.resize(nchunks * N);
  double* part = partial.data();
  const ColumnSumsFn<float> sums_f32 = column_sums_for_cpu<float>();
  const ColumnSumsFn<uint16_t> sums_bf16 = column_sums_for_cpu<uint16_t>();
  parallel_for(nchunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; c++) {
      const int64_t m0 = c * kBiasRows, m1 = std::min(M, (c + 1) * kBiasRows);
      if (p.dtype == DType::F32) sums_f32((const float*)p.dout, N, p.ld, m0, m1, part + c * N);
      else sums_bf16((const uint16_t*)p.dout, N, p.ld, m0, m1, part + c * N);
    }
  });
  parallel_for(N, 1024, [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; j++) {
      double s = 0.0;
      for (int64_t c = 0; c < nchunks; c++) s += part[c * N + j];
      p.dbias[j] += (float)s;
    }
  });
}

}  // namespace lb
