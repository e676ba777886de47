// softmax_xent.cpp (cpu): one task per row, on an f32 view of the row (bf16 rows are widened into
// scratch first). Pass 1 is an online max / sum: blocks of kBlock logits, the running sum (8 lanes) is
// rescaled when a block raises the max, and the argmax (first index) is tracked. Pass 2 writes the
// gradient. Both passes use fast_exp and get an AVX2 clone. dlogits may alias logits: pass 2 reads
// each element before writing it. With AVX-512 the row is read from memory once and exp is taken
// once per logit, in one online pass (block max, exp into an L2-resident scratch row, running sum),
// while the thread's next row is prefetched; then dlogits = scratch * (grad_scale / sum). With dlogits
// in its own f32 array the scratch row is dlogits' row itself (see row_avx512's kIntoD).
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "cpu_util.h"

namespace lb {
namespace {

using cpu::bf16;
using cpu::fast_exp;
constexpr int kBlock = 256;

// log-sum-exp of z (V) and the first index of its max
LB_ISA_BODY float row_lse_body(const float* __restrict z, int V, int* argmax) {
  float m = -std::numeric_limits<float>::infinity();
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int am = 0;
  for (int j0 = 0; j0 < V; j0 += kBlock) {
    const int w = std::min(kBlock, V - j0);
    const float* __restrict x = z + j0;
    float bm[8];
    for (int l = 0; l < 8; l++) bm[l] = -std::numeric_limits<float>::infinity();
    int i = 0;
    for (; i + 8 <= w; i += 8)
      for (int l = 0; l < 8; l++) bm[l] = x[i + l] > bm[l] ? x[i + l] : bm[l];
    for (int l = 0; i < w; i++, l++) bm[l] = x[i] > bm[l] ? x[i] : bm[l];
    float cm = bm[0];
    for (int l = 1; l < 8; l++) cm = bm[l] > cm ? bm[l] : cm;
    if (cm > m) {  // a strictly larger max: the first index holding it, then rescale the running sum
      for (int k = 0; k < w; k++)
        if (x[k] == cm) { am = j0 + k; break; }
      const float c = fast_exp(m - cm);  // 0 on the first block (m = -inf)
      for (int l = 0; l < 8; l++) acc[l] *= c;
      m = cm;
    }
    i = 0;
    for (; i + 8 <= w; i += 8)
      for (int l = 0; l < 8; l++) acc[l] += fast_exp(x[i + l] - m);
    for (int l = 0; i < w; i++, l++) acc[l] += fast_exp(x[i] - m);
  }
  *argmax = am;
  const float sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  return m + std::log(sum);
}
LB_ISA_VARIANTS(float, row_lse, (const float* __restrict z, int V, int* argmax), (z, V, argmax))

// d (V) = softmax(z) * gs, from the row's lse; d may alias z
LB_ISA_BODY void row_grad_body(const float* z, int V, float lse, float gs, float* d) {
  for (int j = 0; j < V; j++) d[j] = fast_exp(z[j] - lse) * gs;
}
LB_ISA_VARIANTS(void, row_grad, (const float* z, int V, float lse, float gs, float* d), (z, V, lse, gs, d))

// an ignored row (label == ignore_index): loss 0, not correct, zero gradient
template <class T>
void ignored_row(const SoftmaxXentParams& p, int64_t r, T* dlogits) {
  p.losses[r] = 0.0f;
  if (p.correct) p.correct[r] = 0;
  if (dlogits) std::fill(dlogits + r * p.ld, dlogits + r * p.ld + p.V, cpu::from_f32<T>(0.0f));
}

template <class T>
void impl(const SoftmaxXentParams& p) {
  const T* logits = static_cast<const T*>(p.logits);
  T* dlogits = static_cast<T*>(p.dlogits);
  const int V = p.V;
  parallel_for(p.N, std::max<int64_t>(1, 8192 / V), [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> buf;
    for (int64_t r = begin; r < end; r++) {
      const int32_t y = p.labels[r];
      if (y == p.ignore_index) {
        ignored_row(p, r, dlogits);
        continue;
      }
      const float* z;  // the row in f32
      float* g;        // where the f32 gradient goes
      if constexpr (std::is_same_v<T, float>) {
        z = logits + r * p.ld;
        g = dlogits ? dlogits + r * p.ld : nullptr;
      } else {
        float* zb = cpu::grow(buf, (size_t)V);
        const T* src = logits + r * p.ld;
        for (int j = 0; j < V; j++) zb[j] = cpu::to_f32(src[j]);
        z = zb;
        g = zb;
      }
      int argmax = 0;
      const float lse = row_lse(z, V, &argmax);
      const float zy = z[y];
      p.losses[r] = lse - zy;
      if (p.correct) p.correct[r] = argmax == y ? 1 : 0;
      if (dlogits) {
        row_grad(z, V, lse, p.grad_scale, g);
        g[y] = (fast_exp(zy - lse) - 1.0f) * p.grad_scale;
        if constexpr (!std::is_same_v<T, float>) {
          T* d = dlogits + r * p.ld;
          for (int j = 0; j < V; j++) d[j] = cpu::from_f32<T>(g[j]);
        }
      }
    }
  });
}

#if LB_X86_SIMD
LB_AVX512_BEGIN
using cpu::load16;
using cpu::store16;
using cpu::tail_mask;
using cpu::exp2_16;

constexpr float kLog2e = 1.44269504088896341f;
constexpr int kVB = 16;            // vectors per block
constexpr int kBlk = 16 * kVB;     // logits per block

// One row: loss, correct and (if d) d (V) = (softmax(z) - onehot(y)) * gs; e (V, padded to a block)
// and ref (blocks) scratch. One pass over the row in memory, block by block (the block is re-read from
// L1): block max, and if it raises the running max M, the running sum is rescaled; then
// e = 2^(z log2e - ML) with ML = M log2e rounded to f32 (one FMA per element), summed, kept in e with
// the block's ML. A second pass writes d = e * 2^(ML_block - ML_final) * gs / sum from L2.
// ML's rounding makes every e_j off by the same factor 2^(M log2e - ML): it cancels in e / sum, and lse
// is corrected for it exactly.
// kIntoD (d in its own f32 array, not z): e is d's row. A plain store first reads the line it writes
// (read for ownership); here those reads come in the pass that streams z, alongside z's reads, and
// the second pass scales d in place from L2. With a separate scratch they came in a write-only pass
// of their own: 640 x 30522 went from 0.63-0.66 to 0.70-0.76 of the same-bytes copy. (Streaming
// stores from the scratch were 0.91x: the write pass then runs with no reads beside it.)
template <class T, bool kIntoD = false>
LB_AVX512 void row_avx512(const T* z, int V, int y, float gs, float* e, float* ref, T* d, float* loss, int32_t* correct,
                          const T* next) {
  static_assert(!kIntoD || std::is_same_v<T, float>, "kIntoD: e is the f32 output row d");
  const float ninf = -std::numeric_limits<float>::infinity();
  const __m512 vninf = _mm512_set1_ps(ninf);
  const __m512 vl2e = _mm512_set1_ps(kLog2e);
  float M = ninf, ML = ninf;
  int amblock = -1;  // first block holding the max
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  // block b's max is bm: on a strictly larger max, rescale the running sum (0 * anything on the first
  // block); ref[b] records the log2-scaled max the block's exps are taken against
  auto raise_max = [&](float bm, int b) {
    if (bm > M) {
      const float nML = bm * kLog2e;
      const __m512 c = exp2_16(_mm512_set1_ps(ML - nML));
      for (int k = 0; k < 4; k++) acc[k] = _mm512_mul_ps(acc[k], c);
      M = bm;
      ML = nML;
      amblock = b;
    }
    ref[b] = ML;
  };
  const int nb = (V + kBlk - 1) / kBlk;
  for (int b = 0; b < nb; b++) {
    const int j0 = b * kBlk;
    float* eb = e + j0;
    // the next row comes into cache while this one is computed (lines past its end are never touched)
    if (next) {
      const char* pn = reinterpret_cast<const char*>(next + j0);
      const char* pe = reinterpret_cast<const char*>(next + V);
      for (int o = 0; o < kBlk * (int)sizeof(T) && pn + o < pe; o += 64) _mm_prefetch(pn + o, _MM_HINT_T0);
    }
    if (j0 + kBlk <= V) {
      __m512 mx[4] = {vninf, vninf, vninf, vninf};
      for (int k = 0; k < kVB; k++) mx[k & 3] = _mm512_max_ps(load16(z + j0 + 16 * k, 0xffff), mx[k & 3]);
      const float bm = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(mx[0], mx[1]), _mm512_max_ps(mx[2], mx[3])));
      raise_max(bm, b);
      if (M == ninf) {  // nothing above -inf yet: these exps are 0
        for (int k = 0; k < kVB; k++) {
          if constexpr (kIntoD) _mm512_storeu_ps(eb + 16 * k, _mm512_setzero_ps());
          else _mm512_store_ps(eb + 16 * k, _mm512_setzero_ps());
        }
        continue;
      }
      const __m512 vML = _mm512_set1_ps(ML);
      for (int k = 0; k < kVB; k++) {
        const __m512 ex = exp2_16(_mm512_fmsub_ps(load16(z + j0 + 16 * k, 0xffff), vl2e, vML));
        if constexpr (kIntoD) _mm512_storeu_ps(eb + 16 * k, ex);
        else _mm512_store_ps(eb + 16 * k, ex);
        acc[k & 3] = _mm512_add_ps(acc[k & 3], ex);
      }
    } else {  // the last, partial block: masked-off lanes read as -inf
      __m512 mx = vninf;
      for (int j = j0; j < V; j += 16) {
        const __mmask16 m = tail_mask(V - j);
        mx = _mm512_mask_max_ps(mx, m, load16(z + j, m), mx);
      }
      const float bm = _mm512_reduce_max_ps(mx);
      raise_max(bm, b);
      const __m512 vML = _mm512_set1_ps(ML);
      for (int j = j0; j < V; j += 16) {
        const __mmask16 m = tail_mask(V - j);
        const __m512 ex = M == ninf ? _mm512_setzero_ps() : _mm512_maskz_mov_ps(m, exp2_16(_mm512_fmsub_ps(load16(z + j, m), vl2e, vML)));
        if constexpr (kIntoD) store16(e + j, m, ex);  // d ends at V
        else _mm512_store_ps(e + j, ex);
        acc[0] = _mm512_add_ps(acc[0], ex);
      }
    }
  }
  if (correct) {  // first index of the max, in the first block that reached it (none above -inf: index 0)
    int am = 0;
    if (amblock >= 0) {
      const __m512 vmax = _mm512_set1_ps(M);
      for (int j = amblock * kBlk; j < V; j += 16) {
        const __mmask16 m = tail_mask(V - j);
        const __mmask16 hit = _mm512_mask_cmp_ps_mask(m, load16(z + j, m), vmax, _CMP_EQ_OQ);
        if (hit) { am = j + __builtin_ctz(hit); break; }
      }
    }
    *correct = am == y ? 1 : 0;
  }
  const float sum = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
  // e_j = exp(z_j - M) 2^-err with err = ML - M log2e (exact by FMA), so lse = M + ln(sum) + err ln2
  const float err = -std::fma(M, kLog2e, -ML);
  const float zy = cpu::to_f32(z[y]);
  *loss = M + (std::log(sum) + err * 0.69314718055994531f) - zy;
  if (!d) return;
  const float inv = 1.0f / sum;
  const __m512 sc = _mm512_set1_ps(inv * gs);
  // d = e * gs / sum, each block by its own reference: blocks summed before the max was reached carry
  // 2^(ref - ML), folded into that block's scale (few blocks). e is d's own row with kIntoD (scaled
  // where it is, from L2), else the scratch row; py is read before d (which may alias z) is written.
  const float py = e[y] * std::exp2(ref[y / kBlk] - ML) * inv;
  for (int b = 0; b < nb; b++) {
    const __m512 c = ref[b] != ML ? _mm512_mul_ps(sc, _mm512_set1_ps(std::exp2(ref[b] - ML))) : sc;
    const int jend = std::min(V, (b + 1) * kBlk);
    for (int j = b * kBlk; j < jend; j += 16) {
      const __mmask16 m = tail_mask(jend - j);
      store16(d + j, m, _mm512_mul_ps(load16(e + j, m), c));
    }
  }
  d[y] = cpu::from_f32<T>((py - 1.0f) * gs);
}
LB_AVX512_END

template <class T>
void impl_avx512(const SoftmaxXentParams& p) {
  const T* logits = static_cast<const T*>(p.logits);
  T* dlogits = static_cast<T*>(p.dlogits);
  const int V = p.V;
  // dlogits in its own f32 array: the exps go straight into it (kIntoD)
  const bool into_d = dlogits && static_cast<const void*>(dlogits) != static_cast<const void*>(logits);
  parallel_for(p.N, std::max<int64_t>(1, 8192 / V), [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> buf;
    const int nb = (V + kBlk - 1) / kBlk;
    float* e = cpu::grow_aligned(buf, (size_t)nb * kBlk + nb);  // (nb * kBlk)
    float* ref = e + (size_t)nb * kBlk;                          // (nb)
    for (int64_t r = begin; r < end; r++) {
      const int32_t y = p.labels[r];
      if (y == p.ignore_index) {
        ignored_row(p, r, dlogits);
        continue;
      }
      const T* next = r + 1 < end ? logits + (r + 1) * p.ld : nullptr;
      if constexpr (std::is_same_v<T, float>) {
        if (into_d) {
          row_avx512<T, true>(logits + r * p.ld, V, y, p.grad_scale, dlogits + r * p.ld, ref, dlogits + r * p.ld, p.losses + r,
                              p.correct ? p.correct + r : nullptr, next);
          continue;
        }
      }
      row_avx512<T>(logits + r * p.ld, V, y, p.grad_scale, e, ref, dlogits ? dlogits + r * p.ld : nullptr, p.losses + r,
                    p.correct ? p.correct + r : nullptr, next);
    }
  });
}
#endif

}  // namespace

void softmax_xent_forward_cpu(const SoftmaxXentParams& p) {
  // logits, dlogits (N, V) row stride ld; labels, losses, correct (N); dlogits = (softmax - onehot) * scale (=)
  for (int r = 0; r < p.N; r++) {  // validate first, so a bad label leaves every output untouched
    const int32_t y = p.labels[r];
    if (y != p.ignore_index && (y < 0 || y >= p.V)) cpu::index_error("softmax_xent", "labels", r, y, p.V);
  }
#if LB_X86_SIMD
  if (cpu::has_avx512()) return cpu::with_dtype(p.dtype, [&](auto tag) { impl_avx512<decltype(tag)>(p); });
#endif
  cpu::with_dtype(p.dtype, [&](auto tag) { impl<decltype(tag)>(p); });
}

}  // namespace lb
