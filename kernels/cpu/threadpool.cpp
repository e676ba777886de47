// threadpool.cpp: workers sleep on a condition variable between jobs; a job is a range split into
// chunks claimed with an atomic counter, so uneven chunks balance themselves.
#include "threadpool.h"
#include "../ops.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace lb {
namespace {

struct Pool {
  std::vector<std::thread> workers;
  std::mutex mu;
  std::condition_variable cv_start, cv_done;
  uint64_t generation = 0;
  bool stopping = false;
  // current job
  RangeFn fn = nullptr;
  void* ctx = nullptr;
  int64_t n = 0, chunk = 1;
  std::atomic<int64_t> next{0};
  int active = 0;  // workers still inside the current job
  int nthreads = 1;
  std::mutex job_mu;  // one parallel_for at a time (nested calls run serially)

  void run_chunks() {
    for (;;) {
      const int64_t b = next.fetch_add(chunk, std::memory_order_relaxed);
      if (b >= n) break;
      fn(ctx, b, std::min(n, b + chunk));
    }
  }
  void worker_loop() {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lk(mu);
        cv_start.wait(lk, [&] { return stopping || generation != seen; });
        if (stopping) return;
        seen = generation;
      }
      run_chunks();
      std::lock_guard<std::mutex> lk(mu);
      if (--active == 0) cv_done.notify_one();
    }
  }
  void start(int n_threads) {
    nthreads = std::max(1, n_threads);
    for (int i = 1; i < nthreads; i++) workers.emplace_back([this] { worker_loop(); });
  }
  void stop() {
    {
      std::lock_guard<std::mutex> lk(mu);
      stopping = true;
    }
    cv_start.notify_all();
    for (auto& t : workers) t.join();
    workers.clear();
    stopping = false;
  }
  ~Pool() { stop(); }
};

int default_threads() {
  if (const char* env = std::getenv("LINKBERT_NUM_THREADS")) {
    const int v = std::atoi(env);
    if (v > 0) return v;
  }
  const unsigned hc = std::thread::hardware_concurrency();
  return hc ? (int)hc : 1;
}

Pool& pool() {
  static Pool p;
  static std::once_flag once;
  std::call_once(once, [] { p.start(default_threads()); });
  return p;
}

thread_local bool in_parallel = false;

}  // namespace

void parallel_for_impl(int64_t n, int64_t grain, RangeFn fn, void* ctx) {
  Pool& p = pool();
  const int64_t max_chunks = (n + grain - 1) / grain;
  if (p.nthreads == 1 || max_chunks <= 1 || in_parallel) {
    fn(ctx, 0, n);
    return;
  }
  std::unique_lock<std::mutex> job(p.job_mu, std::try_to_lock);
  if (!job.owns_lock()) {  // another JS-thread job is running (e.g. from a worker): run serially
    fn(ctx, 0, n);
    return;
  }
  // ~4 chunks per thread balances uneven work without much claiming overhead.
  const int64_t target = (int64_t)p.nthreads * 4;
  const int64_t chunks = std::min(max_chunks, target);
  {
    std::lock_guard<std::mutex> lk(p.mu);
    p.fn = fn; p.ctx = ctx; p.n = n;
    p.chunk = (n + chunks - 1) / chunks;
    p.next.store(0, std::memory_order_relaxed);
    p.active = (int)p.workers.size();
    p.generation++;
  }
  p.cv_start.notify_all();
  in_parallel = true;
  p.run_chunks();
  in_parallel = false;
  std::unique_lock<std::mutex> lk(p.mu);
  p.cv_done.wait(lk, [&] { return p.active == 0; });
}

int cpu_num_threads() { return pool().nthreads; }

void cpu_set_num_threads(int n) {
  Pool& p = pool();
  std::lock_guard<std::mutex> job(p.job_mu);
  p.stop();
  p.start(n);
}

// What the CPU kernels can use at run time (the addon is built without -march; hot kernels carry
// target attributes and dispatch on this).
const char* cpu_simd_level() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  // the memory-bound kernels' AVX-512 paths also need BW, VL and DQ (cpu::has_avx512); GEMM needs only F
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma"))
    return "avx512";
  if (__builtin_cpu_supports("avx512f")) return "avx512f (GEMM only)";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "avx2+fma";
  return "sse2";
#elif defined(__ARM_NEON)
  return "neon";
#else
  return "scalar";
#endif
}

}  // namespace lb
