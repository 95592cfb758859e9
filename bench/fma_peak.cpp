// This machine's fp32 FMA peak: every thread runs 12 independent chains of vector FMAs in the
// widest registers the host has (compiled with -march=native): zmm with AVX-512, ymm with AVX,
// else 16-byte vectors (SSE, NEON). 12 chains cover 2 FMA pipes of latency up to 6 cycles, and
// 12 accumulators plus 2 constants fit 16 registers, so nothing spills.
#include "bench/fma_peak.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace switchyard::bench {
namespace {

#if defined(__AVX512F__)
constexpr int kVectorBytes = 64;
#elif defined(__AVX__)
constexpr int kVectorBytes = 32;
#else
constexpr int kVectorBytes = 16;
#endif
constexpr int kLanes = kVectorBytes / 4;
constexpr int kChains = 12;
typedef float Vec __attribute__((vector_size(kVectorBytes)));

using Clock = std::chrono::steady_clock;

float fma_chains(long iterations) {
  Vec acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = Vec{} + 1.0f + static_cast<float>(i) * 1e-3f;
  const Vec a = Vec{} + 0.999999f, b = Vec{} + 1e-7f;
  for (long it = 0; it < iterations; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) acc[i] = acc[i] * a + b;
  }
  float sum = 0;
  for (int i = 0; i < kChains; ++i)
    for (int l = 0; l < kLanes; ++l) sum += acc[i][l];
  return sum;
}

// One trial: the threads start together (a spinning barrier, so none is still being created
// while others run) and the trial lasts until the last one finishes.
double trial_gflops(unsigned threads, long iterations) {
  std::atomic<unsigned> ready{0};
  std::atomic<bool> go{false};
  std::vector<float> sink(threads);
  std::vector<std::thread> workers;
  for (unsigned t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) {
      }
      sink[t] = fma_chains(iterations);
    });
  }
  while (ready.load() < threads) {
  }
  const auto start = Clock::now();
  go.store(true, std::memory_order_release);
  for (auto& w : workers) w.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const double flops = 2.0 * kLanes * kChains * static_cast<double>(iterations) * threads;
  return flops / seconds / 1e9 + (sink[0] == 12345.f ? 1e-9 : 0.0);
}

}  // namespace

double fma_peak_gflops(unsigned threads) {
  // Size a trial to about 0.2 s (clocks ramp up and a short trial is all start-up), then keep
  // the best of five: a peak is the most the machine did, never an average with interruptions.
  const long probe = 1'000'000;
  const double probe_gflops = trial_gflops(1, probe);
  const double per_thread_flops = 0.2 * probe_gflops * 1e9;
  const long iterations = std::max(probe, static_cast<long>(per_thread_flops / (2.0 * kLanes * kChains)));
  double best = 0;
  for (int t = 0; t < 5; ++t) best = std::max(best, trial_gflops(threads, iterations));
  return best;
}

int fma_peak_vector_bits() {
  return kVectorBytes * 8;
}

}  // namespace switchyard::bench
