// threadpool.h: a persistent pool that uses every core. parallel_for splits [0, n) into chunks of at
// least `grain` items; each thread runs its own contiguous share of them first, then claims what is
// left of the others' (see threadpool.cpp); the calling thread works too. No allocation per call.
#pragma once
#include <cstdint>
#include <utility>

namespace lb {

using RangeFn = void (*)(void* ctx, int64_t begin, int64_t end);
void parallel_for_impl(int64_t n, int64_t grain, RangeFn fn, void* ctx);

template <class F>
inline void parallel_for(int64_t n, int64_t grain, F&& f) {
  if (n <= 0) return;
  parallel_for_impl(n, grain < 1 ? 1 : grain,
                    [](void* ctx, int64_t b, int64_t e) { (*static_cast<std::remove_reference_t<F>*>(ctx))(b, e); },
                    (void*)&f);
}

}  // namespace lb
