// tensor.h: native tensors. Data stays native; JS holds handles {id, shape, dtype, device}.
// A Storage is one allocation (host: 64-byte aligned; cuda: caching allocator). A Tensor is a view
// (byte offset + shape + dtype) of a storage; the arena is one storage carved into many views, so a
// training step allocates nothing.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "../kernels/ops.h"

namespace lb {

enum class Device : int { Cpu = 0, Cuda = 1 };
inline const char* device_name(Device d) { return d == Device::Cpu ? "cpu" : "cuda"; }

struct Storage {
  void* ptr = nullptr;
  size_t bytes = 0;
  Device device = Device::Cpu;
  int refs = 0;  // tensors viewing it
};

struct Tensor {
  uint32_t id = 0;
  Storage* storage = nullptr;
  size_t offset = 0;  // bytes
  std::vector<int64_t> shape;
  int64_t numel = 0;
  DType dtype = DType::F32;
  Device device = Device::Cpu;
  void* data() const { return static_cast<char*>(storage->ptr) + offset; }
  size_t nbytes() const { return (size_t)numel * dtype_size(dtype); }
};

class TensorRegistry {
 public:
  // Allocates a zero-filled tensor. Throws std::bad_alloc / std::runtime_error.
  Tensor& alloc(const std::vector<int64_t>& shape, DType dtype, Device device);
  // A view of `base`'s storage at byte offset `offset` (must fit in the storage).
  Tensor& view(const Tensor& base, size_t offset, const std::vector<int64_t>& shape, DType dtype);
  Tensor* find(uint32_t id);
  bool dispose(uint32_t id);  // false if unknown / already disposed
  size_t live() const { return tensors_.size(); }
  size_t host_bytes() const { return host_bytes_; }

 private:
  void release(Storage* s);
  std::unordered_map<uint32_t, Tensor> tensors_;
  uint32_t next_id_ = 1;
  size_t host_bytes_ = 0;
};

TensorRegistry& registry();

}  // namespace lb
