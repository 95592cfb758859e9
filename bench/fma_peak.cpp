// This machine's fp32 FMA peak, measured by a loop of independent vector FMAs on every thread.
// Compiled for the host CPU (-march=native) so the loop uses its widest vectors.
#include "bench/fma_peak.h"

#include <chrono>
#include <thread>
#include <vector>

namespace switchyard::bench {
namespace {

typedef float Vec __attribute__((vector_size(64)));

float fma_loop(long iterations) {
  Vec acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = Vec{} + 1.0f + static_cast<float>(i) * 1e-3f;
  const Vec a = Vec{} + 0.999999f, b = Vec{} + 1e-7f;
  for (long it = 0; it < iterations; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = acc[i] * a + b;
  }
  float sum = 0;
  for (int i = 0; i < 12; ++i)
    for (int l = 0; l < 16; ++l) sum += acc[i][l];
  return sum;
}

}  // namespace

double fma_peak_gflops(unsigned threads) {
  const long iterations = 20'000'000;
  std::vector<std::thread> workers;
  std::vector<float> sink(threads);
  auto start = std::chrono::steady_clock::now();
  for (unsigned t = 0; t < threads; ++t) workers.emplace_back([&, t] { sink[t] = fma_loop(iterations); });
  for (auto& w : workers) w.join();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  double flops = 2.0 * 16 * 12 * static_cast<double>(iterations) * threads;
  return flops / seconds / 1e9 + (sink[0] == 12345.f ? 1e-9 : 0.0);
}

}  // namespace switchyard::bench
