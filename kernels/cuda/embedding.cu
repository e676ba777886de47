// embedding.cu: out[b,t] = wte[ids[b,t]] + wpe[t] + wtt[type_ids[b,t]] (f32 tables, out f32/bf16).
// backward (parameter grads +=), deterministic, no float atomics:
//   dwte: rows.cuh scatter-add (tokens summed in order);
//   dwpe[t] += sum_b dout[b,t]: one thread per (t, c), b in order;
//   dwtt: type_vocab is tiny and every token hits it, so per-chunk partials (256 tokens each, in order)
//   then a fixed-order sum over chunks.
// An id or type id out of range cannot throw from the device: its output row is NaN, the backward
// skips it, and the first one is recorded for the next synchronize to throw (common.cuh).
#include "rows.cuh"

namespace lb {
namespace {

constexpr int kTypeChunk = 256;

template <typename T>
__global__ void embedding_fwd_kernel(const int32_t* ids, const int32_t* types, const float* wte, const float* wpe,
                                     const float* wtt, T* out, int B, int T_, int C, int V, int type_vocab,
                                     LbDeviceError* err) {
  // ids, types (B,T); wte (V,C); wpe (max_pos,C); wtt (type_vocab,C); out (B,T,C)
  const int64_t total = (int64_t)B * T_ * C;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
    const int64_t bt = e / C;
    const int c = (int)(e % C), t = (int)(bt % T_);
    const int id = ids[bt], ty = types ? types[bt] : 0;
    float v = NAN;
    if (id >= 0 && id < V && ty >= 0 && ty < type_vocab)
      v = wte[(size_t)id * C + c] + wpe[(size_t)t * C + c] + wtt[(size_t)ty * C + c];
    else if (c == 0 && (id < 0 || id >= V))
      lb_report_index_error(err, OpId::embedding, kWhatIds, bt, id, V);
    else if (c == 0)
      lb_report_index_error(err, OpId::embedding, kWhatTypeIds, bt, ty, type_vocab);
    lb_st(out + e, v);
  }
}

template <typename T>
__global__ void dwpe_kernel(const T* dout, float* dwpe, int B, int T_, int C) {  // dout (B,T,C), dwpe (max_pos,C) +=
  const int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (e >= (int64_t)T_ * C) return;
  float acc = dwpe[e];
  for (int b = 0; b < B; b++) acc += lb_ld(dout + (size_t)b * T_ * C + e);
  dwpe[e] = acc;
}

template <typename T>
__global__ void dwtt_partial_kernel(const T* dout, const int32_t* types, float* partial, int BT, int C,
                                    int type_vocab) {
  // dout (BT,C); partial (chunks, type_vocab, C) written; blockIdx.y = chunk of kTypeChunk tokens
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  const int t0 = blockIdx.y * kTypeChunk, t1 = min(BT, t0 + kTypeChunk);
  for (int v = 0; v < type_vocab; v++) {
    float acc = 0.0f;
    for (int t = t0; t < t1; t++) {
      const int ty = types ? types[t] : 0;
      if (ty == v) acc += lb_ld(dout + (size_t)t * C + c);
    }
    partial[((size_t)blockIdx.y * type_vocab + v) * C + c] = acc;
  }
}

__global__ void dwtt_final_kernel(const float* partial, float* dwtt, int chunks, int n) {
  // partial (chunks, n), dwtt (n) +=, chunks in order
  const int e = blockIdx.x * blockDim.x + threadIdx.x;
  if (e >= n) return;
  float acc = 0.0f;
  for (int k = 0; k < chunks; k++) acc += partial[(size_t)k * n + e];
  dwtt[e] += acc;
}

}  // namespace

void embedding_forward_cuda(const EmbeddingParams& p) {
  const int64_t n = (int64_t)p.B * p.T * p.C;
  if (n <= 0) return;
  LB_FLOAT_DISPATCH("embedding", p.dtype, T,
                    embedding_fwd_kernel<T><<<lb_blocks(n, 256), 256, 0, cuda_stream()>>>(
                        p.ids, p.type_ids, p.wte, p.wpe, p.wtt, (T*)p.out, p.B, p.T, p.C, p.V, p.type_vocab,
                        cuda_error_slot()));
  lb_check_launch("embedding");
}

void embedding_backward_cuda(const EmbeddingParams& p) {
  const int BT = p.B * p.T;
  if (BT <= 0 || p.C <= 0) return;
  LB_FLOAT_DISPATCH("embedding", p.dtype, T, {
    lb_scatter_add_rows<T, float>((const T*)p.dout, p.dwte, p.ids, BT, p.C, p.V, "embedding", OpId::embedding,
                                  kWhatIds);
    if (p.dwpe) {
      dwpe_kernel<T><<<lb_blocks((int64_t)p.T * p.C, 256, INT32_MAX), 256, 0, cuda_stream()>>>((const T*)p.dout, p.dwpe,
                                                                                              p.B, p.T, p.C);
      lb_check_launch("embedding");
    }
    if (p.dwtt) {
      const int chunks = (BT + kTypeChunk - 1) / kTypeChunk;
      CudaScratch partial(sizeof(float) * (size_t)chunks * p.type_vocab * p.C);
      dwtt_partial_kernel<T><<<dim3((p.C + 127) / 128, chunks), 128, 0, cuda_stream()>>>(
          (const T*)p.dout, p.type_ids, partial.as<float>(), BT, p.C, p.type_vocab);
      lb_check_launch("embedding");
      const int n = p.type_vocab * p.C;
      dwtt_final_kernel<<<(n + 255) / 256, 256, 0, cuda_stream()>>>(partial.as<float>(), p.dwtt, chunks, n);
      lb_check_launch("embedding");
    }
  });
}

}  // namespace lb
