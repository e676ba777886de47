// threadpool.cpp: a job is a range split into chunks. Thread t (the caller is 0) first runs the chunks
// of its own contiguous share, in order, then claims what is left of the others' shares (each share is
// an atomic counter), so uneven chunks still balance themselves. Owning a share means that on a
// steady machine the same rows go to the same core in every op: an op reads what the previous one wrote
// from that core's own L2, not from the other core's (claiming from one counter, layernorm backward
// in place over 4096 x 256 and a copy of its bytes each took 1.1x the time). Between jobs a worker
// spins for a short while (kSpinNs) before it sleeps on a condition variable, and the caller spins on
// the completion count before it sleeps: a training step runs hundreds of ops back to back, each a few
// tens of microseconds at bert-mini sizes, and a futex wake-up of a sleeping thread costs about as much
// as the op (OpenMP runtimes spin for the same reason).
#include "threadpool.h"
#include "../ops.h"
#include "cpu_util.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace lb {
namespace {

// how long an idle worker (or a caller waiting for workers) spins before it blocks
constexpr int64_t kSpinNs = 100000;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

inline int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Spin until pred() holds or kSpinNs pass; true if it holds. The clock is read every 64 spins.
template <class Pred>
bool spin_until(Pred pred) {
  int64_t deadline = -1;
  for (int i = 0;; i++) {
    if (pred()) return true;
    if ((i & 63) == 63) {
      const int64_t t = now_ns();
      if (deadline < 0) deadline = t + kSpinNs;
      else if (t >= deadline) return pred();
    }
    cpu_relax();
  }
}

struct Pool {
  std::vector<std::thread> workers;
  std::mutex mu;  // guards sleeping on cv_start / cv_done (the job fields are published by `generation`)
  std::condition_variable cv_start, cv_done;
  std::atomic<uint64_t> generation{0};
  std::atomic<bool> stopping{false};
  int sleepers = 0;           // workers blocked on cv_start (under mu)
  bool caller_sleeping = false;  // the caller is blocked on cv_done (under mu)
  // current job: written before `generation` is bumped (release), read after it is seen (acquire)
  RangeFn fn = nullptr;
  void* ctx = nullptr;
  int64_t n = 0, chunk = 1;
  // thread t's share: chunks [share[t].next, share[t].end), claimed by fetch_add (own line each)
  struct alignas(64) Share {
    std::atomic<int64_t> next{0};
    int64_t end = 0;
  };
  std::vector<Share> share;
  std::atomic<int> active{0};  // workers still inside the current job
  int nthreads = 1;
  std::mutex job_mu;  // one parallel_for at a time (nested calls run serially)

  void run_share(int t) {
    Share& sh = share[t];
    for (;;) {
      const int64_t c = sh.next.fetch_add(1, std::memory_order_relaxed);
      if (c >= sh.end) break;
      fn(ctx, c * chunk, std::min(n, (c + 1) * chunk));
    }
  }
  // thread `self`: its own share first, then the others' in turn
  void run_chunks(int self) {
    for (int k = 0; k < nthreads; k++) run_share((self + k) % nthreads);
  }
  // `seen`: the generation when the worker was created (read then, not when the thread first runs, or
  // a job published in between would never be seen)
  void worker_loop(int self, uint64_t seen) {
    for (;;) {
      auto ready = [&] { return stopping.load(std::memory_order_acquire) || generation.load(std::memory_order_acquire) != seen; };
      if (!spin_until(ready)) {
        std::unique_lock<std::mutex> lk(mu);
        sleepers++;
        cv_start.wait(lk, ready);
        sleepers--;
      }
      if (stopping.load(std::memory_order_acquire)) return;
      seen = generation.load(std::memory_order_acquire);
      run_chunks(self);
      if (active.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lk(mu);
        if (caller_sleeping) cv_done.notify_one();
      }
    }
  }
  void start(int n_threads) {
    nthreads = std::max(1, n_threads);
    share = std::vector<Share>(nthreads);
    const uint64_t g = generation.load(std::memory_order_acquire);
    for (int i = 1; i < nthreads; i++) workers.emplace_back([this, i, g] { worker_loop(i, g); });
  }
  void stop() {
    {
      std::lock_guard<std::mutex> lk(mu);
      stopping.store(true, std::memory_order_release);
    }
    cv_start.notify_all();
    for (auto& t : workers) t.join();
    workers.clear();
    stopping.store(false, std::memory_order_release);
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
  p.fn = fn;
  p.ctx = ctx;
  p.n = n;
  p.chunk = (n + chunks - 1) / chunks;
  const int64_t nchunks = (n + p.chunk - 1) / p.chunk;
  for (int t = 0; t < p.nthreads; t++) {  // contiguous shares, as even as whole chunks allow
    p.share[t].next.store(nchunks * t / p.nthreads, std::memory_order_relaxed);
    p.share[t].end = nchunks * (t + 1) / p.nthreads;
  }
  p.active.store((int)p.workers.size(), std::memory_order_relaxed);
  {
    // the bump publishes the job; sleepers are counted under mu, so none can miss it
    std::lock_guard<std::mutex> lk(p.mu);
    p.generation.fetch_add(1, std::memory_order_release);
    if (p.sleepers > 0) p.cv_start.notify_all();
  }
  in_parallel = true;
  p.run_chunks(0);
  in_parallel = false;
  auto done = [&] { return p.active.load(std::memory_order_acquire) == 0; };
  if (!spin_until(done)) {
    std::unique_lock<std::mutex> lk(p.mu);
    p.caller_sleeping = true;
    p.cv_done.wait(lk, done);
    p.caller_sleeping = false;
  }
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
  const int cap = cpu::g_isa_cap.load(std::memory_order_relaxed);  // set_cpu_isa
  if (cap == 1) return "avx2+fma (capped by set_cpu_isa)";
  if (cap == 0) return "sse2 (capped by set_cpu_isa)";
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
