// store_kinds.cpp: how fast this machine writes one array while reading another, by kind of store, with
// no arithmetic to speak of. It is the bound on an op that reads a row and writes its result into its own
// array (softmax-CE or the layernorm backward with a separate output), against the same-bytes copy that
// `bench kernels` compares them with. Two threads, each on half of 640 rows of 30528 floats (the
// softmax-CE bench shape), 15 runs each, medians; GB/s counts the bytes read plus the bytes written, as
// `bench kernels` does.
//
//   memcpy / rep movsb   the copy peer (glibc's memcpy; the string instruction itself)
//   plain                one pass: read src, write dst with ordinary stores (each line read first)
//   stream               the same with streaming stores (no read for ownership, not cached)
//   in place             one pass over one array: read, write back (no third stream)
//   two-pass             read the row, then read it again from L2 and write dst (softmax's shape)
//   two-pass, stream     the same, the write pass with streaming stores
//   two-pass, into dst   pass 1 copies the row into dst (ordinary stores), pass 2 rewrites dst from L2
//                        (softmax_xent's separate-output path since session 17)
//   interleaved stream   row r read while row r-1 is streamed out, 1 KB blocks of each in turn
//   write only, stream   no reads: an L2-resident row streamed out over and over
//   two-pass, clzero     pass 1 also zeroes each dst line with AMD's clzero, pass 2 stores into it: clzero
//                        writes the line to memory like a streaming store (clzero only: ~100 GB/s), so
//                        pass 2 reads it back for ownership (no faster than two-pass). Storing into the
//                        line right after its clzero, in pass 1, took 0.6 GB/s (not listed).
//   clzero only          dst zeroed line by line, nothing read (bytes: those written)
//
// Build and run (any directory):
//   g++ -O2 -std=c++17 -pthread bench/harness/store_kinds.cpp -o /tmp/store_kinds && /tmp/store_kinds
// AVX-512 and clzero (AMD) only (the machine the CPU results come from has both).
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace {

constexpr size_t kRow = 30528;  // floats per row (30522 rounded up to whole lines)
constexpr size_t kRows = 640;

using Fn = void (*)(const float* s, float* d, size_t n, float* scratch);

#define LB_T __attribute__((target("avx512f")))

void copy_memcpy(const float* s, float* d, size_t n, float*) { std::memcpy(d, s, n * 4); }
void copy_movsb(const float* s, float* d, size_t n, float*) {
  size_t c = n * 4;
  asm volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(c) : : "memory");
}
LB_T void plain(const float* s, float* d, size_t n, float*) {
  const __m512 k = _mm512_set1_ps(1.0001f);
  for (size_t i = 0; i < n; i += 16) _mm512_storeu_ps(d + i, _mm512_mul_ps(_mm512_loadu_ps(s + i), k));
}
LB_T void stream(const float* s, float* d, size_t n, float*) {
  const __m512 k = _mm512_set1_ps(1.0001f);
  for (size_t i = 0; i < n; i += 16) _mm512_stream_ps(d + i, _mm512_mul_ps(_mm512_loadu_ps(s + i), k));
  _mm_sfence();
}
// pass 1 sums the row (or copies it into dst), pass 2 scales it into dst
template <int kWrite>  // 0 ordinary stores, 1 streaming stores, 2 pass 1 writes dst and pass 2 rewrites it
LB_T void two_pass(const float* s, float* d, size_t n, float*) {
  for (size_t r = 0; r + kRow <= n; r += kRow) {
    __m512 a = _mm512_setzero_ps();
    for (size_t i = 0; i < kRow; i += 16) {
      const __m512 v = _mm512_loadu_ps(s + r + i);
      a = _mm512_add_ps(a, v);
      if (kWrite == 2) _mm512_storeu_ps(d + r + i, v);
    }
    const float* src = kWrite == 2 ? d : s;
    for (size_t i = 0; i < kRow; i += 16) {
      const __m512 v = _mm512_mul_ps(_mm512_loadu_ps(src + r + i), a);
      if (kWrite == 1) _mm512_stream_ps(d + r + i, v);
      else _mm512_storeu_ps(d + r + i, v);
    }
  }
  if (kWrite == 1) _mm_sfence();
}
// two_pass with each dst line cleared by clzero in pass 1 (AMD; no read for ownership of its own)
LB_T void two_pass_clzero(const float* s, float* d, size_t n, float*) {
  for (size_t r = 0; r + kRow <= n; r += kRow) {
    __m512 a = _mm512_setzero_ps();
    for (size_t i = 0; i < kRow; i += 16) {
      a = _mm512_add_ps(a, _mm512_loadu_ps(s + r + i));
      asm volatile("clzero" : : "a"(d + r + i) : "memory");
    }
    for (size_t i = 0; i < kRow; i += 16) _mm512_storeu_ps(d + r + i, _mm512_mul_ps(_mm512_loadu_ps(s + r + i), a));
  }
}
void clzero_only(const float*, float* d, size_t n, float*) {
  for (size_t i = 0; i < n; i += 16) asm volatile("clzero" : : "a"(d + i) : "memory");
}
// row r read into scratch (kRow) while row r-1 (the other half of scratch) is streamed out, 1 KB at a time
LB_T void interleaved_stream(const float* s, float* d, size_t n, float* scratch) {
  const size_t nr = n / kRow;
  float* e[2] = {scratch, scratch + kRow};
  for (size_t r = 0; r <= nr; r++) {
    float *cur = e[r & 1], *prev = e[(r + 1) & 1];
    for (size_t b = 0; b < kRow; b += 256) {
      const size_t end = std::min(b + 256, kRow);
      if (r < nr)
        for (size_t i = b; i < end; i += 16) _mm512_store_ps(cur + i, _mm512_loadu_ps(s + r * kRow + i));
      if (r > 0)
        for (size_t i = b; i < end; i += 16) _mm512_stream_ps(d + (r - 1) * kRow + i, _mm512_load_ps(prev + i));
    }
  }
  _mm_sfence();
}
LB_T void write_only_stream(const float*, float* d, size_t n, float* scratch) {
  for (size_t r = 0; r + kRow <= n; r += kRow)
    for (size_t i = 0; i < kRow; i += 16) _mm512_stream_ps(d + r + i, _mm512_load_ps(scratch + i));
  _mm_sfence();
}

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

}  // namespace

int main() {
  const size_t n = kRows * kRow;
  float* src = static_cast<float*>(std::aligned_alloc(64, n * 4));  // (rows, kRow)
  float* dst = static_cast<float*>(std::aligned_alloc(64, n * 4));  // (rows, kRow)
  for (size_t i = 0; i < n; i++) src[i] = dst[i] = (float)(i % 1000) * 1e-3f;
  float* scratch[2];  // per thread: (2, kRow), L2-resident
  for (float*& p : scratch) {
    p = static_cast<float*>(std::aligned_alloc(64, 2 * kRow * 4));
    std::memset(p, 0, 2 * kRow * 4);
  }
  struct Kind { const char* name; Fn fn; bool in_place; double bytes; };  // bytes: per element, read + written
  const Kind kinds[] = {
      {"memcpy", copy_memcpy, false, 8},      {"rep movsb", copy_movsb, false, 8},
      {"plain", plain, false, 8},             {"stream", stream, false, 8},
      {"in place", plain, true, 8},           {"two-pass", two_pass<0>, false, 8},
      {"two-pass, stream", two_pass<1>, false, 8}, {"two-pass, into dst", two_pass<2>, false, 8},
      {"interleaved stream", interleaved_stream, false, 8}, {"write only, stream", write_only_stream, false, 4},
      {"two-pass, clzero", two_pass_clzero, false, 8}, {"clzero only", clzero_only, false, 4},
  };
  const size_t half = kRows / 2 * kRow;
  for (int round = 0; round < 2; round++) {
    std::printf("round %d\n", round + 1);
    for (const Kind& k : kinds) {
      std::vector<double> ts;
      for (int rep = 0; rep < 15; rep++) {
        const double t0 = now();
        std::thread th[2];
        for (int t = 0; t < 2; t++)
          th[t] = std::thread([&, t] { k.fn(src + t * half, (k.in_place ? src : dst) + t * half, half, scratch[t]); });
        for (std::thread& x : th) x.join();
        ts.push_back(now() - t0);
      }
      std::sort(ts.begin(), ts.end());
      std::printf("  %-20s %7.2f ms %7.1f GB/s\n", k.name, ts[7] * 1e3, k.bytes * n / ts[7] / 1e9);
    }
  }
}
