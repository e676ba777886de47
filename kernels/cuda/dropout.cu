// dropout.cu: out[i] = keep(i) ? x[i] / (1 - p) : 0 with keep(i) = lb_dropout_keep(seed, offset + i, p)
// (Philox, kernels/common.h), a block of 4 counters at a time (lb_uniform4: the uniforms lb_uniform gives
// each of them). The backward regenerates the mask: dx[i] = keep(i) ? dout[i] / (1 - p) : 0
// (activation grad, =). x/out and dout/dx may alias.
#include "common.cuh"

namespace lb {
namespace {

constexpr int kThreads = 256;

// Vector of 4 elements for the aligned path: 16 bytes of f32, 8 of bf16.
template <typename T> struct Vec4;
template <> struct Vec4<float> { typedef float4 type; };
template <> struct Vec4<bf16_t> { typedef ushort4 type; };

// One thread per Philox block: counters 4 b .. 4 b + 3 are elements i = 4 b + w - offset (w < 4) that
// fall in [0, n), so one Philox evaluation serves 4 elements (lb_uniform4). vec: offset % 4 == 0 and
// in/out aligned to 4 elements, so every whole block is one vector load and store.
template <typename T>
__global__ void dropout_kernel(const T* in, T* out, int64_t n, int64_t nblocks, float p, float inv_keep,
                               uint64_t seed, uint64_t offset, bool vec) {  // in, out (n)
  const uint64_t b0 = offset >> 2;
  const int64_t lead = (int64_t)(offset & 3);  // counters of the first block before element 0
  for (int64_t g = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; g < nblocks; g += (int64_t)gridDim.x * blockDim.x) {
    float u[4];
    lb_uniform4(seed, b0 + (uint64_t)g, u);
    const int64_t i0 = 4 * g - lead;  // element of word 0 (negative in a first block that starts early)
    if (vec && i0 + 4 <= n) {
      typedef typename Vec4<T>::type V;
      V v = *reinterpret_cast<const V*>(in + i0);
      T* e = reinterpret_cast<T*>(&v);
#pragma unroll
      for (int w = 0; w < 4; w++) lb_st(e + w, u[w] >= p ? lb_ld(e + w) * inv_keep : 0.0f);
      *reinterpret_cast<V*>(out + i0) = v;
      continue;
    }
#pragma unroll
    for (int w = 0; w < 4; w++) {
      const int64_t i = i0 + w;
      if (i >= 0 && i < n) lb_st(out + i, u[w] >= p ? lb_ld(in + i) * inv_keep : 0.0f);
    }
  }
}

void dropout_apply(const char* op, const void* in, void* out, const DropoutParams& p) {
  if (p.n <= 0) return;
  const float inv_keep = 1.0f / (1.0f - p.p);
  const int64_t nblocks = ((int64_t)(p.offset & 3) + p.n + 3) >> 2;  // blocks over counters [offset, offset + n)
  const size_t vbytes = 4 * (p.dtype == DType::BF16 ? 2 : 4);
  const bool vec = (p.offset & 3) == 0 && (uintptr_t)in % vbytes == 0 && (uintptr_t)out % vbytes == 0;
  LB_FLOAT_DISPATCH(op, p.dtype, T,
                    dropout_kernel<T><<<lb_blocks(nblocks, kThreads), kThreads, 0, cuda_stream()>>>(
                        (const T*)in, (T*)out, p.n, nblocks, p.p, inv_keep, p.seed, p.offset, vec));
  lb_check_launch(op);
}

}  // namespace

void dropout_forward_cuda(const DropoutParams& p) { dropout_apply("dropout", p.x, p.out, p); }
void dropout_backward_cuda(const DropoutParams& p) { dropout_apply("dropout", p.dout, p.dx, p); }

}  // namespace lb
