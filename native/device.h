// device.h: device memory and stream, implemented by kernels/cuda/runtime.cu in the CUDA build and by
// kernels/cuda_stub.cpp in the CPU build (where every call but the queries throws "built without CUDA").
#pragma once
#include <cstddef>
#include <string>

namespace lb {

bool cuda_compiled();
int cuda_device_count();                 // 0 when there is no driver or device; never throws
std::string cuda_device_name(int index); // "" when unavailable
std::string cuda_unavailable_reason();   // why cuda_device_count() is 0 ("no CUDA device: ...")

// Caching allocator on the current device: no cudaMalloc inside the step loop once warmed up.
void* cuda_alloc(size_t bytes);
void cuda_free(void* ptr);
size_t cuda_bytes_in_use();
size_t cuda_bytes_reserved();

void cuda_memcpy_h2d(void* dst, const void* src, size_t bytes);  // enqueued on the stream
void cuda_memcpy_d2h(void* dst, const void* src, size_t bytes);  // waits for the stream
void cuda_memcpy_d2d(void* dst, const void* src, size_t bytes);  // enqueued on the stream
void cuda_memset_zero(void* dst, size_t bytes);                   // enqueued on the stream
void cuda_synchronize();                                          // waits for the stream; throws on a sticky error
// Device-side timing for benchmarks: events recorded on the stream around the work in between, so the
// launch and host synchronisation overheads are not counted. stop waits for the stop event.
void cuda_timer_start();
double cuda_timer_stop_ms();
// Profiling marks: cuda_timer_mark() records an event on the stream and returns its index (from 0 after
// cuda_timer_clear()); cuda_timer_elapsed_ms(a, b) waits for mark b and gives the device time a -> b.
int cuda_timer_mark();
double cuda_timer_elapsed_ms(int a, int b);
void cuda_timer_clear();

}  // namespace lb
