#include "tensor.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "device.h"

namespace lb {

TensorRegistry& registry() {
  static TensorRegistry r;
  return r;
}

static int64_t numel_of(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // the N-API layer has checked for overflow
  return n;
}

// Host storage: 64-byte aligned; from 4 MB up, 2 MB aligned and (Linux) advised for transparent huge
// pages, which this kernel gives only where asked ("madvise" mode). With 4 KB pages a streaming op
// misses the TLB every 4 KB and the hardware prefetchers stop at each page's end.
static void* host_alloc(size_t bytes) {
  constexpr size_t kHuge = size_t(2) << 20;
  if (bytes < 2 * kHuge) return std::aligned_alloc(64, bytes);
  void* p = std::aligned_alloc(kHuge, (bytes + kHuge - 1) / kHuge * kHuge);  // a multiple of the alignment
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  // the whole 2 MB pages only: the part-used last one stays in 4 KB pages, so no tensor holds more
  // memory than it uses. Advice: without THP the pages stay 4 KB.
  if (p) madvise(p, bytes / kHuge * kHuge, MADV_HUGEPAGE);
#endif
  return p;
}

Tensor& TensorRegistry::alloc(const std::vector<int64_t>& shape, DType dtype, Device device) {
  const int64_t n = numel_of(shape);
  const size_t bytes = (size_t)n * dtype_size(dtype);
  auto* s = new Storage();
  s->bytes = bytes;
  s->device = device;
  const size_t padded = ((bytes + 63) / 64) * 64 + 64;  // never a zero-size allocation
  if (device == Device::Cpu) {
    s->ptr = host_alloc(padded);
    if (!s->ptr) {
      delete s;
      throw std::bad_alloc();
    }
    std::memset(s->ptr, 0, padded);
    host_bytes_ += padded;
  } else {
    try {
      s->ptr = cuda_alloc(padded);
    } catch (...) {
      delete s;
      throw;
    }
  }
  Tensor t;
  t.id = next_id_++;
  t.storage = s;
  t.shape = shape;
  t.numel = n;
  t.dtype = dtype;
  t.device = device;
  s->refs = 1;
  auto it = tensors_.emplace(t.id, std::move(t)).first;
  return it->second;
}

Tensor& TensorRegistry::view(const Tensor& base, size_t offset, const std::vector<int64_t>& shape, DType dtype) {
  const int64_t n = numel_of(shape);
  const size_t bytes = (size_t)n * dtype_size(dtype);
  if (offset > base.storage->bytes || bytes > base.storage->bytes - offset)
    throw std::range_error("view: offset + size exceeds the base storage");
  if (offset % dtype_size(dtype) != 0) throw std::range_error("view: offset is not aligned to the dtype");
  Tensor t;
  t.id = next_id_++;
  t.storage = base.storage;
  t.offset = offset;
  t.shape = shape;
  t.numel = n;
  t.dtype = dtype;
  t.device = base.device;
  base.storage->refs++;
  auto it = tensors_.emplace(t.id, std::move(t)).first;
  return it->second;
}

Tensor* TensorRegistry::find(uint32_t id) {
  auto it = tensors_.find(id);
  return it == tensors_.end() ? nullptr : &it->second;
}

void TensorRegistry::release(Storage* s) {
  if (--s->refs > 0) return;
  if (s->device == Device::Cpu) {
    host_bytes_ -= ((s->bytes + 63) / 64) * 64 + 64;
    std::free(s->ptr);
  } else {
    cuda_free(s->ptr);
  }
  delete s;
}

bool TensorRegistry::dispose(uint32_t id) {
  auto it = tensors_.find(id);
  if (it == tensors_.end()) return false;
  Storage* s = it->second.storage;
  tensors_.erase(it);
  release(s);
  return true;
}

}  // namespace lb
