// common.cuh: what every kernels/cuda/*.cu shares: the backend stream, error checks, the dtype
// dispatch, f32/bf16 loads and stores (through kernels/common.h, so CPU tests run the same rounding),
// warp/block reductions, stream-ordered scratch, and the pure online-softmax math (__host__ __device__,
// covered by a CPU test).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "../../native/device.h"
#include "../common.h"
#include "../ops.h"
#include "online_softmax.h"

namespace lb {

// The one stream every kernel, memcpy and memset of the backend is enqueued on (runtime.cu).
cudaStream_t cuda_stream();
// Cached device properties of the current device (runtime.cu).
const cudaDeviceProp& cuda_props();

// Bad indices found on the device (a label, token id or row index out of range) cannot throw there.
// The kernel records the first one in this slot (device memory, zero = none) and treats the row as NaN /
// skips it; the next cuda_synchronize() or device-to-host copy throws std::out_of_range with the same
// message the ref backend gives ("<op>: <what>[<pos>] = <value> is outside [0, <hi>)").
struct LbDeviceError {
  int flag;  // 0 none, 1 being written, 2 complete
  int op;    // OpId
  int what;  // LbIndexWhat
  int pad;
  long long pos, value, hi;
};
enum LbIndexWhat : int { kWhatLabels = 0, kWhatIds = 1, kWhatTypeIds = 2, kWhatIndex = 3 };
LbDeviceError* cuda_error_slot();
void cuda_check_device_error();  // after a stream sync: throws if a kernel recorded a bad index

__device__ __forceinline__ void lb_report_index_error(LbDeviceError* e, OpId op, int what, long long pos,
                                                      long long value, long long hi) {
  if (atomicCAS(&e->flag, 0, 1) == 0) {  // first reporter wins; the others are dropped
    e->op = (int)op; e->what = what; e->pos = pos; e->value = value; e->hi = hi;
    __threadfence();
    atomicExch(&e->flag, 2);
  }
}

// After a launch: a bad configuration or a sticky error becomes "<op>: <cuda error string>".
inline void lb_check_launch(const char* op) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw std::runtime_error(std::string(op) + ": " + cudaGetErrorString(e));
}
inline void lb_check(cudaError_t e, const char* op) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(op) + ": " + cudaGetErrorString(e));
}
[[noreturn]] inline void lb_unsupported(const char* op, DType t) {
  throw std::runtime_error(std::string(op) + ": dtype " + dtype_name(t) + " is not supported on cuda");
}

// Raises a kernel's dynamic shared-memory limit once (cudaFuncSetAttribute costs host time per call and
// the matmul / attention launchers run hundreds of times per step).
inline void lb_set_max_smem(const void* kernel, int bytes, const char* op) {
  static std::mutex mu;
  static std::unordered_map<const void*, int> done;
  std::lock_guard<std::mutex> lock(mu);
  auto it = done.find(kernel);
  if (it != done.end() && it->second >= bytes) return;
  lb_check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes), op);
  done[kernel] = bytes;
}

// bf16 is carried as its raw bits (uint16_t) so every conversion goes through kernels/common.h.
typedef uint16_t bf16_t;

__device__ __forceinline__ float lb_ld(const float* p) { return *p; }
__device__ __forceinline__ float lb_ld(const bf16_t* p) { return lb_bf16_to_f32(*p); }
__device__ __forceinline__ void lb_st(float* p, float v) { *p = v; }
__device__ __forceinline__ void lb_st(bf16_t* p, float v) { *p = lb_f32_to_bf16(v); }

// Four consecutive elements in one access (16 bytes of f32, 8 of bf16): a memory-bound kernel with one
// scalar load per thread keeps too few bytes in flight (GELU forward ran at half of cudaMemcpy's rate on
// an H200). The pointer must be 4-element aligned: lb_aligned4 on the host.
__device__ __forceinline__ void lb_ld4(const float* p, float v[4]) {
  const float4 q = *reinterpret_cast<const float4*>(p);
  v[0] = q.x; v[1] = q.y; v[2] = q.z; v[3] = q.w;
}
__device__ __forceinline__ void lb_ld4(const bf16_t* p, float v[4]) {
  const uint2 q = *reinterpret_cast<const uint2*>(p);
  v[0] = lb_bf16_to_f32((bf16_t)(q.x & 0xffffu)); v[1] = lb_bf16_to_f32((bf16_t)(q.x >> 16));
  v[2] = lb_bf16_to_f32((bf16_t)(q.y & 0xffffu)); v[3] = lb_bf16_to_f32((bf16_t)(q.y >> 16));
}
__device__ __forceinline__ void lb_st4(float* p, const float v[4]) {
  *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
}
__device__ __forceinline__ void lb_st4(bf16_t* p, const float v[4]) {
  *reinterpret_cast<uint2*>(p) = make_uint2((uint32_t)lb_f32_to_bf16(v[0]) | ((uint32_t)lb_f32_to_bf16(v[1]) << 16),
                                            (uint32_t)lb_f32_to_bf16(v[2]) | ((uint32_t)lb_f32_to_bf16(v[3]) << 16));
}
// Whether every pointer (null ones ignored) is aligned for lb_ld4 / lb_st4 on T.
template <typename T, typename... P>
inline bool lb_aligned4(const P*... ptrs) {
  return (((reinterpret_cast<uintptr_t>(ptrs) % (4 * sizeof(T))) == 0) && ...);
}
// Grid-stride loop over n elements: with vec (lb_aligned4 pointers) body4(i) takes elements [i, i + 4) for
// i < n & ~3, then body1(i) each of the rest; without it body1 takes them all. Launch lb_blocks4 blocks.
template <class Body4, class Body1>
__device__ __forceinline__ void lb_for_each4(int64_t n, bool vec, Body4 body4, Body1 body1) {
  const int64_t stride = (int64_t)gridDim.x * blockDim.x, first = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  const int64_t n4 = vec ? n / 4 : 0;
  for (int64_t i = first; i < n4; i += stride) body4(4 * i);
  for (int64_t i = 4 * n4 + first; i < n; i += stride) body1(i);
}

// out[i] = f(x[i]) for i < n through f32 (x may equal out; S, D float or bf16_t), 4 elements per access
// with vec (lb_aligned4 pointers), then the tail. Launch lb_blocks4 blocks.
template <typename S, typename D, class F>
__device__ __forceinline__ void lb_map4(const S* x, D* out, int64_t n, bool vec, F f) {
  lb_for_each4(
      n, vec,
      [&](int64_t i) {
        float v[4];
        lb_ld4(x + i, v);
#pragma unroll
        for (int k = 0; k < 4; k++) v[k] = f(v[k]);
        lb_st4(out + i, v);
      },
      [&](int64_t i) { lb_st(out + i, f(lb_ld(x + i))); });
}

// Calls body with T = float or bf16_t according to a floating dtype; anything else is an error.
#define LB_FLOAT_DISPATCH(op, dtype, T, ...)            \
  do {                                                  \
    if ((dtype) == ::lb::DType::F32) {                  \
      typedef float T;                                  \
      __VA_ARGS__;                                      \
    } else if ((dtype) == ::lb::DType::BF16) {          \
      typedef ::lb::bf16_t T;                           \
      __VA_ARGS__;                                      \
    } else {                                            \
      ::lb::lb_unsupported(op, dtype);                  \
    }                                                   \
  } while (0)

// ---- reductions (full warps; blockDim.x a multiple of 32, at most 1024)
__device__ __forceinline__ float lb_warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float lb_warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
// Block sum, broadcast to every thread; `red` is >= 32 floats of shared memory. Fixed tree: deterministic.
__device__ __forceinline__ float lb_block_sum(float v, float* red) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = (blockDim.x + 31) >> 5;
  v = lb_warp_sum(v);
  __syncthreads();  // red may still be read by a previous call
  if (lane == 0) red[warp] = v;
  __syncthreads();
  v = lane < nwarps ? red[lane] : 0.0f;
  return lb_warp_sum(v);
}
__device__ __forceinline__ float lb_block_max(float v, float* red) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = (blockDim.x + 31) >> 5;
  v = lb_warp_max(v);
  __syncthreads();
  if (lane == 0) red[warp] = v;
  __syncthreads();
  v = lane < nwarps ? red[lane] : -INFINITY;
  return lb_warp_max(v);
}

// ---- online softmax: online_softmax.h (plain C++, so a CPU test covers it).

// ---- launch shapes
inline unsigned lb_blocks(int64_t n, int threads, int64_t cap = 65535LL * 8) {
  int64_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  return (unsigned)(b > cap ? cap : b);
}
// blocks for lb_for_each4: one thread per 4 elements when vec
inline unsigned lb_blocks4(int64_t n, bool vec, int threads) { return lb_blocks(vec ? (n + 3) / 4 : n, threads); }

// Stream-ordered scratch from the caching allocator: freed (returned to the cache) when it goes out of
// scope; every user is on the one stream, so a later kernel reusing the block runs after this one.
struct CudaScratch {
  void* ptr = nullptr;
  explicit CudaScratch(size_t bytes) : ptr(bytes ? cuda_alloc(bytes) : nullptr) {}
  ~CudaScratch() { if (ptr) cuda_free(ptr); }
  CudaScratch(const CudaScratch&) = delete;
  CudaScratch& operator=(const CudaScratch&) = delete;
  template <typename T> T* as() const { return static_cast<T*>(ptr); }
};

}  // namespace lb
