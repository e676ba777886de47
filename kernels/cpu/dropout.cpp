// dropout.cpp (cpu): the mask is Philox(seed, offset + i) (common.h, shared with CUDA), regenerated in
// the backward pass, never stored. x may alias out and dout may alias dx.
#include <type_traits>

#include "cpu_util.h"

namespace lb {
namespace {

// The f32 loop as its own function so it gets an AVX2 clone: Philox vectorises over consecutive counters.
LB_ISA_BODY void dropout_f32_body(const float* in, float* out, int64_t n, float prob, uint64_t seed, uint64_t ctr0, float s) {
  for (int64_t i = 0; i < n; i++) out[i] = lb_dropout_keep(seed, ctr0 + (uint64_t)i, prob) ? in[i] * s : 0.0f;
}
LB_ISA_VARIANTS(void, dropout_f32, (const float* in, float* out, int64_t n, float prob, uint64_t seed, uint64_t ctr0, float s), (in, out, n, prob, seed, ctr0, s))

#if LB_X86_SIMD
LB_AVX512_BEGIN
// cpu::dropout_scale: 64 keep bits per Philox run, four runs interleaved (bit-identical to lb_dropout_keep)
template <class T>
LB_AVX512 void dropout_avx512(const T* in, T* out, int64_t n, float prob, uint64_t seed, uint64_t ctr0, float s) {
  cpu::dropout_scale(in, out, n, seed, ctr0, prob, s);
}
LB_AVX512_END
#endif

template <class T>
void impl(const void* inv, void* outv, int64_t n, float prob, uint64_t seed, uint64_t offset) {
  const T* in = static_cast<const T*>(inv);
  T* out = static_cast<T*>(outv);
  const float s = 1.0f / (1.0f - prob);
#if LB_X86_SIMD
  if (cpu::has_avx512()) {
    parallel_for(n, 1 << 13, [&](int64_t b, int64_t e) {
      dropout_avx512<T>(in + b, out + b, e - b, prob, seed, offset + (uint64_t)b, s);  // T: float or cpu::bf16 bits
    });
    return;
  }
#endif
  parallel_for(n, 1 << 13, [&](int64_t b, int64_t e) {
    if constexpr (std::is_same_v<T, float>) {
      dropout_f32(in + b, out + b, e - b, prob, seed, offset + (uint64_t)b, s);
      return;
    }
    for (int64_t i = b; i < e; i++) {
      const bool keep = lb_dropout_keep(seed, offset + (uint64_t)i, prob);
      out[i] = keep ? cpu::from_f32<T>(cpu::to_f32(in[i]) * s) : cpu::from_f32<T>(0.0f);
    }
  });
}

}  // namespace

void dropout_forward_cpu(const DropoutParams& p) {
  // x, out (n)
  cpu::with_dtype(p.dtype, [&](auto tag) { impl<decltype(tag)>(p.x, p.out, p.n, p.p, p.seed, p.offset); });
}
void dropout_backward_cpu(const DropoutParams& p) {
  // dout, dx (n); dx = keep ? dout / (1-p) : 0  (=)
  cpu::with_dtype(p.dtype, [&](auto tag) { impl<decltype(tag)>(p.dout, p.dx, p.n, p.p, p.seed, p.offset); });
}

}  // namespace lb
