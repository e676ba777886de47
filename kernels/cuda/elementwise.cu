// elementwise.cu: axpby, scale, fill, copy (with f32 <-> bf16 casts). Memory-bound grid-stride loops.
#include <cmath>

#include "common.cuh"

namespace lb {
namespace {

constexpr int kThreads = 256;

// out = alpha * a + beta * b (b may be null); out may alias a or b (each element read before written).
// vec: the pointers are lb_aligned4 (lb_for_each4)
template <typename T>
__global__ void axpby_kernel(const T* a, const T* b, T* out, int64_t n, float alpha, float beta, bool vec) {
  lb_for_each4(
      n, vec,
      [&](int64_t i) {
        float v[4], w[4];
        lb_ld4(a + i, v);
        if (b) lb_ld4(b + i, w);
#pragma unroll
        for (int k = 0; k < 4; k++) v[k] = b ? alpha * v[k] + beta * w[k] : alpha * v[k];
        lb_st4(out + i, v);
      },
      [&](int64_t i) {
        float v = alpha * lb_ld(a + i);
        if (b) v += beta * lb_ld(b + i);
        lb_st(out + i, v);
      });
}

// x = s * x, in place. vec: x is lb_aligned4 (lb_map4)
template <typename T>
__global__ void scale_kernel(T* x, int64_t n, float s, bool vec) {
  lb_map4(x, x, n, vec, [&](float v) { return s * v; });
}

// The four-word vector of a raw word type, for fill (16 bytes of f32 or i32, 8 of bf16).
template <typename W> struct Word4;
template <> struct Word4<float> { typedef float4 type; static __device__ float4 splat(float v) { return make_float4(v, v, v, v); } };
template <> struct Word4<int32_t> { typedef int4 type; static __device__ int4 splat(int32_t v) { return make_int4(v, v, v, v); } };
template <> struct Word4<uint16_t> {
  typedef uint2 type;
  static __device__ uint2 splat(uint16_t v) { const uint32_t w = (uint32_t)v | ((uint32_t)v << 16); return make_uint2(w, w); }
};

// fill over raw words: the value's bit pattern is computed once on the host (f32, bf16 or i32).
// vec: x is aligned to four words
template <typename W>
__global__ void fill_kernel(W* x, int64_t n, W value, bool vec) {
  const typename Word4<W>::type v4 = Word4<W>::splat(value);
  lb_for_each4(
      n, vec, [&](int64_t i) { *reinterpret_cast<typename Word4<W>::type*>(x + i) = v4; }, [&](int64_t i) { x[i] = value; });
}

// dst = src converted (f32 <-> bf16). vec: both lb_aligned4 on their own element type
template <typename S, typename D>
__global__ void cast_kernel(const S* src, D* dst, int64_t n, bool vec) {
  lb_map4(src, dst, n, vec, [](float v) { return v; });
}

}  // namespace

void axpby_forward_cuda(const AxpbyParams& p) {
  if (p.n <= 0) return;
  LB_FLOAT_DISPATCH("axpby", p.dtype, T, {
    const bool vec = lb_aligned4<T>(p.a, p.b, p.out);
    axpby_kernel<T><<<lb_blocks4(p.n, vec, kThreads), kThreads, 0, cuda_stream()>>>(
        (const T*)p.a, (const T*)p.b, (T*)p.out, p.n, p.alpha, p.beta, vec);
  });
  lb_check_launch("axpby");
}

void scale_forward_cuda(const ScaleParams& p) {
  if (p.n <= 0) return;
  LB_FLOAT_DISPATCH("scale", p.dtype, T, {
    const bool vec = lb_aligned4<T>(p.x);
    scale_kernel<T><<<lb_blocks4(p.n, vec, kThreads), kThreads, 0, cuda_stream()>>>((T*)p.x, p.n, p.s, vec);
  });
  lb_check_launch("scale");
}

void fill_forward_cuda(const FillParams& p) {
  if (p.n <= 0) return;
  if (p.dtype == DType::F32) {
    const bool vec = lb_aligned4<float>(p.x);
    fill_kernel<float><<<lb_blocks4(p.n, vec, kThreads), kThreads, 0, cuda_stream()>>>((float*)p.x, p.n, p.value, vec);
  } else if (p.dtype == DType::BF16) {
    const bool vec = lb_aligned4<uint16_t>(p.x);
    fill_kernel<uint16_t><<<lb_blocks4(p.n, vec, kThreads), kThreads, 0, cuda_stream()>>>((uint16_t*)p.x, p.n,
                                                                                        lb_f32_to_bf16(p.value), vec);
  } else {
    // truncated toward zero; outside the i32 range is an error (as ref)
    const double t = std::trunc((double)p.value);
    if (!(t >= (double)INT32_MIN && t <= (double)INT32_MAX))
      throw std::out_of_range("fill: value " + std::to_string(p.value) + " does not fit in i32");
    const bool vec = lb_aligned4<int32_t>(p.x);
    fill_kernel<int32_t><<<lb_blocks4(p.n, vec, kThreads), kThreads, 0, cuda_stream()>>>((int32_t*)p.x, p.n, (int32_t)t, vec);
  }
  lb_check_launch("fill");
}

void copy_forward_cuda(const CopyParams& p) {
  if (p.n <= 0) return;
  if (p.src_dtype == p.dst_dtype) {
    lb_check(cudaMemcpyAsync(p.dst, p.src, (size_t)p.n * dtype_size(p.src_dtype), cudaMemcpyDeviceToDevice,
                             cuda_stream()),
             "copy");
    return;
  }
  if (p.src_dtype == DType::I32 || p.dst_dtype == DType::I32)
    throw std::runtime_error("copy: i32 copies only to i32");
  if (p.src_dtype == DType::F32) {
    const bool vec = lb_aligned4<float>(p.src) && lb_aligned4<bf16_t>(p.dst);
    cast_kernel<float, bf16_t><<<lb_blocks4(p.n, vec, kThreads), kThreads, 0, cuda_stream()>>>(
        (const float*)p.src, (bf16_t*)p.dst, p.n, vec);
  } else {
    const bool vec = lb_aligned4<bf16_t>(p.src) && lb_aligned4<float>(p.dst);
    cast_kernel<bf16_t, float><<<lb_blocks4(p.n, vec, kThreads), kThreads, 0, cuda_stream()>>>(
        (const bf16_t*)p.src, (float*)p.dst, p.n, vec);
  }
  lb_check_launch("copy");
}

}  // namespace lb
