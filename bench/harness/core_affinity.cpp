// core_affinity.cpp: what it costs when an op's rows were last written by the other core.
// Two threads each run the production layernorm backward (in place, 4096 x 256, one half of the rows)
// and a copy of the same bytes; either each thread keeps its half on every run, or the halves swap
// threads every run (the worst case of the pool handing chunks to whichever thread claims first).
// Prints the median microseconds of each. bench/README.md quotes it.
//
// Build and run from the repository root (one command):
//   g++ -O3 -std=c++17 -fno-math-errno -fno-trapping-math -Ikernels -Ikernels/cpu
//     bench/harness/core_affinity.cpp kernels/cpu/layernorm.cpp kernels/cpu/elementwise.cpp
//     kernels/cpu/threadpool.cpp kernels/cpu/supports.cpp -lpthread -o /tmp/core_affinity && /tmp/core_affinity
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "cpu/threadpool.h"
#include "ops.h"

using namespace lb;

static float* filled(size_t n, float v) {
  float* p = static_cast<float*>(std::aligned_alloc(4096, (n * 4 + 4095) / 4096 * 4096));
  for (size_t i = 0; i < n; i++) p[i] = v < 0 ? (float)((i * 2654435761u) % 1000) / 500.f - 1.f : v;
  return p;
}

int main() {
  cpu_set_num_threads(1);  // each op runs on the thread that calls it
  const int rows = 4096, C = 256, half = rows / 2;
  const size_t n = (size_t)rows * C, nc = n * 3 / 2;  // the copy moves the op's bytes: x, dout -> dout
  float* x = filled(n, -1);        // (rows, C)
  float* dout = filled(n, -1);     // (rows, C), dx written over it
  float* mean = filled(rows, 0);   // (rows)
  float* rstd = filled(rows, 1);   // (rows)
  float* gamma = filled(C, 1);     // (C)
  float* src = filled(nc, -1);     // (nc)
  float* dst = filled(nc, 0);      // (nc)
  float* dgamma[2] = {filled(C, 0), filled(C, 0)};  // (C) per thread
  float* dbeta[2] = {filled(C, 0), filled(C, 0)};   // (C) per thread

  // thread t's share of run `it`: op 0 the layernorm backward, 1 the copy; swap: halves change threads
  auto work = [&](int t, long it, int op, bool swap) {
    const int h = swap ? (int)((t + it) & 1) : t;
    if (op == 0) {
      LayernormParams p{};
      p.x = x + (size_t)h * half * C;
      p.mean = mean + h * half;
      p.rstd = rstd + h * half;
      p.gamma = gamma;
      p.rows = half;
      p.cols = C;
      p.dtype = DType::F32;
      p.dout = dout + (size_t)h * half * C;
      p.dx = dout + (size_t)h * half * C;
      p.dgamma = dgamma[t];
      p.dbeta = dbeta[t];
      layernorm_backward_cpu(p);
    } else {
      CopyParams p{src + h * nc / 2, dst + h * nc / 2, (int64_t)(nc / 2), DType::F32, DType::F32};
      copy_forward_cpu(p);
    }
  };
  // the second thread spins on `seq` for each run's command (no wake-up cost in the timing)
  std::atomic<long> seq{0}, acked{0};
  std::atomic<int> cmd{0};
  std::thread helper([&] {
    for (long seen = 0;;) {
      long s;
      while ((s = seq.load(std::memory_order_acquire)) == seen) {}
      seen = s;
      const int c = cmd.load(std::memory_order_acquire);
      if (c < 0) return;
      work(1, s, c & 1, c >> 1);
      acked.store(s, std::memory_order_release);
    }
  });
  long it = 0;
  auto run = [&](int op, bool swap) {
    cmd.store(op | (swap ? 2 : 0), std::memory_order_release);
    seq.store(++it, std::memory_order_release);
    work(0, it, op, swap);
    while (acked.load(std::memory_order_acquire) != it) {}
  };
  for (int rep = 0; rep < 5; rep++) {
    double us[2][2];
    for (int swap = 0; swap < 2; swap++)
      for (int op = 0; op < 2; op++) {
        std::vector<double> t;
        for (int k = 0; k < 300; k++) {
          const auto t0 = std::chrono::steady_clock::now();
          run(op, swap);
          t.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
        }
        std::sort(t.begin(), t.end());
        us[swap][op] = t[t.size() / 2];
      }
    std::printf("same half on each core: layernorm backward %.1f us, copy %.1f us (ratio %.2f) | halves swap cores: %.1f us, %.1f us (%.2f)\n",
                us[0][0], us[0][1], us[0][1] / us[0][0], us[1][0], us[1][1], us[1][1] / us[1][0]);
  }
  cmd.store(-1, std::memory_order_release);
  seq.store(-1, std::memory_order_release);
  helper.join();
  return 0;
}
