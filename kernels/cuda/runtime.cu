// runtime.cu: device discovery, the backend stream and the caching allocator (native/device.h).
// Device queries never throw: no driver / no device is a normal answer ("no CUDA device: <reason>").
// The allocator keeps freed blocks in size-bucketed free lists, so the training step loop, which frees
// and re-allocates the same sizes every step, never calls cudaMalloc once warmed up.
#include <cuda_runtime.h>

#include <map>
#include <stdexcept>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common.cuh"

namespace lb {
namespace {

struct DeviceInfo {
  int count = 0;
  std::string reason;
  std::vector<std::string> names;
  cudaDeviceProp props{};
};

const DeviceInfo& device_info() {
  static DeviceInfo* info = [] {
    auto* d = new DeviceInfo();
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();  // not sticky, but keep later launch checks clean
      d->count = 0;
      d->reason = std::string("no CUDA device: ") + cudaGetErrorString(e);
      return d;
    }
    if (n == 0) {
      d->reason = "no CUDA device: the driver reports 0 devices";
      return d;
    }
    d->count = n;
    for (int i = 0; i < n; i++) {
      cudaDeviceProp p{};
      if (cudaGetDeviceProperties(&p, i) == cudaSuccess) {
        d->names.push_back(p.name);
        if (i == 0) d->props = p;
      } else {
        (void)cudaGetLastError();
        d->names.push_back("");
      }
    }
    return d;
  }();
  return *info;
}

void require_device(const char* what) {
  const DeviceInfo& d = device_info();
  if (d.count == 0) throw std::runtime_error(std::string(what) + ": " + d.reason);
}

// Size classes: 512 B granularity below 1 MiB, 2 MiB above (activations and weights are large and
// repeat exactly, so rounding wastes little and makes reuse likely).
size_t size_class(size_t bytes) {
  if (bytes == 0) bytes = 1;
  const size_t g = bytes < (size_t(1) << 20) ? 512 : (size_t(2) << 20);
  return (bytes + g - 1) / g * g;
}

class Allocator {
 public:
  void* alloc(size_t bytes) {
    require_device("cuda_alloc");
    const size_t sz = size_class(bytes);
    std::lock_guard<std::mutex> lock(mu_);
    // Reuse the smallest cached block that fits, if it wastes at most a quarter (large blocks only).
    auto it = free_.lower_bound(sz);
    if (it != free_.end() && (it->first == sz || (sz >= (size_t(1) << 20) && it->first - sz <= sz / 4))) {
      void* p = it->second.back();
      it->second.pop_back();
      in_use_ += it->first;
      live_[p] = it->first;
      if (it->second.empty()) free_.erase(it);
      return p;
    }
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, sz);
    if (e == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      release_cached_locked();  // give cached blocks back to the driver and retry once
      e = cudaMalloc(&p, sz);
    }
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      throw std::runtime_error(std::string("cuda_alloc: ") + cudaGetErrorString(e) + " (" + std::to_string(sz) +
                               " bytes; " + std::to_string(reserved_) + " reserved)");
    }
    reserved_ += sz;
    in_use_ += sz;
    live_[p] = sz;
    return p;
  }
  void free(void* p) {
    if (!p) return;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.find(p);
    if (it == live_.end()) return;  // not ours (or freed twice): ignore rather than corrupt the cache
    const size_t sz = it->second;
    live_.erase(it);
    in_use_ -= sz;
    free_[sz].push_back(p);  // stream-ordered: the next user is enqueued after every earlier kernel
  }
  size_t in_use() {
    std::lock_guard<std::mutex> lock(mu_);
    return in_use_;
  }
  size_t reserved() {
    std::lock_guard<std::mutex> lock(mu_);
    return reserved_;
  }

 private:
  void release_cached_locked() {
    (void)cudaDeviceSynchronize();
    for (auto& kv : free_)
      for (void* p : kv.second) {
        (void)cudaFree(p);
        reserved_ -= kv.first;
      }
    free_.clear();
    (void)cudaGetLastError();
  }
  std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;  // size class -> cached blocks
  std::unordered_map<void*, size_t> live_;     // block -> size class
  size_t in_use_ = 0, reserved_ = 0;
};

// Leaked on purpose: freeing device memory from static destructors races the driver's own teardown.
Allocator& allocator() {
  static Allocator* a = new Allocator();
  return *a;
}

}  // namespace

const cudaDeviceProp& cuda_props() {
  require_device("cuda");
  return device_info().props;
}

cudaStream_t cuda_stream() {
  static cudaStream_t stream = [] {
    require_device("cuda stream");
    cudaStream_t s = nullptr;
    lb_check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cuda stream");
    return s;
  }();
  return stream;
}

LbDeviceError* cuda_error_slot() {
  // Outside the caching allocator, so cuda_bytes_in_use() counts tensors and scratch only.
  static LbDeviceError* slot = [] {
    require_device("cuda error slot");
    void* p = nullptr;
    lb_check(cudaMalloc(&p, sizeof(LbDeviceError)), "cuda error slot");
    lb_check(cudaMemsetAsync(p, 0, sizeof(LbDeviceError), cuda_stream()), "cuda error slot");
    return static_cast<LbDeviceError*>(p);
  }();
  return slot;
}

void cuda_check_device_error() {
  LbDeviceError e{};
  lb_check(cudaMemcpyAsync(&e, cuda_error_slot(), sizeof(e), cudaMemcpyDeviceToHost, cuda_stream()), "cuda_synchronize");
  lb_check(cudaStreamSynchronize(cuda_stream()), "cuda_synchronize");
  if (e.flag == 0) return;
  lb_check(cudaMemsetAsync(cuda_error_slot(), 0, sizeof(e), cuda_stream()), "cuda_synchronize");
  static const char* whats[] = {"labels", "ids", "type_ids", "index"};
  const char* what = e.what >= 0 && e.what < 4 ? whats[e.what] : "index";
  throw std::out_of_range(std::string(op_name((OpId)e.op)) + ": " + what + "[" + std::to_string(e.pos) + "] = " +
                          std::to_string(e.value) + " is outside [0, " + std::to_string(e.hi) + ")");
}

bool cuda_compiled() { return true; }
int cuda_device_count() { return device_info().count; }
std::string cuda_device_name(int index) {
  const DeviceInfo& d = device_info();
  return index >= 0 && index < (int)d.names.size() ? d.names[index] : std::string();
}
std::string cuda_unavailable_reason() { return device_info().reason; }

void* cuda_alloc(size_t bytes) { return allocator().alloc(bytes); }
void cuda_free(void* ptr) { allocator().free(ptr); }
size_t cuda_bytes_in_use() { return device_info().count ? allocator().in_use() : 0; }
size_t cuda_bytes_reserved() { return device_info().count ? allocator().reserved() : 0; }

void cuda_memcpy_h2d(void* dst, const void* src, size_t bytes) {
  if (!bytes) return;
  lb_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, cuda_stream()), "memcpy h2d");
}
void cuda_memcpy_d2h(void* dst, const void* src, size_t bytes) {
  if (!bytes) return;
  lb_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, cuda_stream()), "memcpy d2h");
  lb_check(cudaStreamSynchronize(cuda_stream()), "memcpy d2h");
  cuda_check_device_error();
}
void cuda_memcpy_d2d(void* dst, const void* src, size_t bytes) {
  if (!bytes) return;
  lb_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cuda_stream()), "memcpy d2d");
}
void cuda_memset_zero(void* dst, size_t bytes) {
  if (!bytes) return;
  lb_check(cudaMemsetAsync(dst, 0, bytes, cuda_stream()), "memset");
}
namespace {
cudaEvent_t timer_event(int which) {
  static cudaEvent_t ev[2] = {nullptr, nullptr};
  if (!ev[which]) lb_check(cudaEventCreate(&ev[which]), "cuda timer");
  return ev[which];
}
bool timer_started = false;
}  // namespace

void cuda_timer_start() {
  require_device("cuda timer");
  lb_check(cudaEventRecord(timer_event(0), cuda_stream()), "cuda timer");
  timer_started = true;
}
double cuda_timer_stop_ms() {
  if (!timer_started) throw std::logic_error("cuda timer: stop without start");
  timer_started = false;
  lb_check(cudaEventRecord(timer_event(1), cuda_stream()), "cuda timer");
  lb_check(cudaEventSynchronize(timer_event(1)), "cuda timer");
  float ms = 0.0f;
  lb_check(cudaEventElapsedTime(&ms, timer_event(0), timer_event(1)), "cuda timer");
  return ms;
}

namespace {
struct MarkPool {
  std::vector<cudaEvent_t> events;  // never destroyed: reused after cuda_timer_clear()
  int used = 0;
};
MarkPool& marks() {
  static MarkPool pool;
  return pool;
}
}  // namespace

int cuda_timer_mark() {
  require_device("cuda timer");
  MarkPool& m = marks();
  if (m.used == (int)m.events.size()) {
    cudaEvent_t e = nullptr;
    lb_check(cudaEventCreate(&e), "cuda timer");
    m.events.push_back(e);
  }
  lb_check(cudaEventRecord(m.events[m.used], cuda_stream()), "cuda timer");
  return m.used++;
}
double cuda_timer_elapsed_ms(int a, int b) {
  MarkPool& m = marks();
  if (a < 0 || b < 0 || a >= m.used || b >= m.used)
    throw std::out_of_range("cuda timer: marks " + std::to_string(a) + ", " + std::to_string(b) + " (have " + std::to_string(m.used) + ")");
  lb_check(cudaEventSynchronize(m.events[b]), "cuda timer");
  float ms = 0.0f;
  lb_check(cudaEventElapsedTime(&ms, m.events[a], m.events[b]), "cuda timer");
  return ms;
}
void cuda_timer_clear() { marks().used = 0; }

void cuda_synchronize() {
  if (device_info().count == 0) return;  // nothing was ever enqueued
  lb_check(cudaStreamSynchronize(cuda_stream()), "cuda_synchronize");
  lb_check(cudaGetLastError(), "cuda_synchronize");
  cuda_check_device_error();
}

}  // namespace lb
