// cuda_stub.cpp: the CUDA entry points of a CPU-only build. Every *_cuda op and device call answers
// "built without CUDA", so a CPU build links the same op table and explains itself.
#include <stdexcept>

#include "../native/device.h"
#include "ops.h"

namespace lb {

static const char* kNoCuda = "built without CUDA: run `npm run build:cuda`";
[[noreturn]] static void no_cuda(const char* what) { throw std::runtime_error(std::string(what) + ": " + kNoCuda); }

bool cuda_compiled() { return false; }
int cuda_device_count() { return 0; }
std::string cuda_device_name(int) { return ""; }
std::string cuda_unavailable_reason() { return kNoCuda; }
void* cuda_alloc(size_t) { no_cuda("cuda_alloc"); }
void cuda_free(void*) {}
size_t cuda_bytes_in_use() { return 0; }
size_t cuda_bytes_reserved() { return 0; }
void cuda_memcpy_h2d(void*, const void*, size_t) { no_cuda("memcpy"); }
void cuda_memcpy_d2h(void*, const void*, size_t) { no_cuda("memcpy"); }
void cuda_memcpy_d2d(void*, const void*, size_t) { no_cuda("memcpy"); }
void cuda_memset_zero(void*, size_t) { no_cuda("memset"); }
void cuda_synchronize() {}
void cuda_timer_start() { no_cuda("cuda timer"); }
double cuda_timer_stop_ms() { no_cuda("cuda timer"); }
int cuda_timer_mark() { no_cuda("cuda timer"); }
double cuda_timer_elapsed_ms(int, int) { no_cuda("cuda timer"); }
void cuda_timer_clear() {}
bool supports_cuda(OpId, DType) { return false; }

#define LB_STUB(fn, P) \
  void fn(const P&) { no_cuda(#fn); }
LB_STUB(matmul_forward_cuda, MatmulParams)
LB_STUB(bias_backward_cuda, BiasBackwardParams)
LB_STUB(attention_forward_cuda, AttentionParams)
LB_STUB(attention_backward_cuda, AttentionParams)
LB_STUB(layernorm_forward_cuda, LayernormParams)
LB_STUB(layernorm_backward_cuda, LayernormParams)
LB_STUB(gelu_forward_cuda, ActivationParams)
LB_STUB(gelu_backward_cuda, ActivationParams)
LB_STUB(tanh_forward_cuda, ActivationParams)
LB_STUB(tanh_backward_cuda, ActivationParams)
LB_STUB(softmax_xent_forward_cuda, SoftmaxXentParams)
LB_STUB(embedding_forward_cuda, EmbeddingParams)
LB_STUB(embedding_backward_cuda, EmbeddingParams)
LB_STUB(gather_rows_forward_cuda, RowsParams)
LB_STUB(scatter_add_rows_forward_cuda, RowsParams)
LB_STUB(dropout_forward_cuda, DropoutParams)
LB_STUB(dropout_backward_cuda, DropoutParams)
LB_STUB(adamw_forward_cuda, AdamwParams)
LB_STUB(grad_norm_forward_cuda, GradNormParams)
LB_STUB(axpby_forward_cuda, AxpbyParams)
LB_STUB(scale_forward_cuda, ScaleParams)
LB_STUB(fill_forward_cuda, FillParams)
LB_STUB(copy_forward_cuda, CopyParams)
#undef LB_STUB

}  // namespace lb
