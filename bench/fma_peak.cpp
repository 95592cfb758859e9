// This machine's fp32 FMA peak: every thread runs 12 independent chains of vector FMAs in the
// widest registers the host has (compiled with -march=native): zmm with AVX-512, ymm with AVX,
// else 16-byte vectors (SSE, NEON). 12 chains cover 2 FMA pipes of latency up to 6 cycles, and
// 12 accumulators plus 2 constants fit 16 registers, so nothing spills. Where the host has
// AVX512_BF16, the same for its bfloat16 dot products (vdpbf16ps: 64 flops per zmm instruction),
// the roofline of the bfloat16 GEMMs that use them; and where it has AMX-BF16, the peak of its tile
// products (tdpbf16ps), the roofline of the GEMMs on tiles.
#include "bench/fma_peak.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include <switchyard/cpu/amx_tiles.hpp>

#include "jit/target.h"

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

#if defined(__AVX512BF16__)
constexpr bool kHasBf16Dot = true;
typedef float Zmm __attribute__((vector_size(64)));
typedef unsigned Bf16Pairs __attribute__((vector_size(64)));

// NOTE: inline assembly: clang 16 crashes on the __m512bh bitcasts of _mm512_dpbf16_ps (see
// templates/switchyard/cpu/gemm_bf16_dot.hpp).
inline __attribute__((always_inline)) void bf16_dot(Zmm& acc, Bf16Pairs a, Bf16Pairs b) {
  __asm__("vdpbf16ps %1, %2, %0" : "+v"(acc) : "v"(a), "v"(b));
}
// NOTE: named accumulators, not an array: g++ keeps an array that inline assembly updates in
// memory, and the chains then wait on store forwarding (half the peak).
template <typename... Acc>
inline __attribute__((always_inline)) void bf16_dot_each(Bf16Pairs a, Bf16Pairs b, Acc&... acc) {
  (bf16_dot(acc, a, b), ...);
}

float bf16_dot_chains(long iterations) {
  static_assert(kChains == 12, "bf16_dot_chains names its twelve accumulators");
  const Bf16Pairs a = Bf16Pairs{} + 0x3f803f80u, b = Bf16Pairs{} + 0x33d633d6u;  // (1, 1) and (1e-7, 1e-7)
  Zmm c0{}, c1{}, c2{}, c3{}, c4{}, c5{}, c6{}, c7{}, c8{}, c9{}, c10{}, c11{};
  for (long it = 0; it < iterations; ++it) bf16_dot_each(a, b, c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11);
  const Zmm sum = c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11;
  return sum[0];
}
#else
constexpr bool kHasBf16Dot = false;
float bf16_dot_chains(long) {
  return 0;
}
#endif

#if defined(__AMX_TILE__) && defined(__AMX_BF16__)
constexpr bool kHasAmx = true;
// Six independent chains of tdpbf16ps (16 x 16 x 32 products each) into C tiles 0-5 from A in
// tile 6 and B in tile 7: a 16-cycle instruction with a longer latency needs several in flight.
float amx_chains(long iterations) {
  const cpu::AmxTiles tiles;
  __asm__ volatile("tilezero %%tmm6\n\ttilezero %%tmm7" ::: "memory");
  for (long it = 0; it < iterations; ++it)
    __asm__ volatile(
        "tdpbf16ps %%tmm7, %%tmm6, %%tmm0\n\ttdpbf16ps %%tmm7, %%tmm6, %%tmm1\n\t"
        "tdpbf16ps %%tmm7, %%tmm6, %%tmm2\n\ttdpbf16ps %%tmm7, %%tmm6, %%tmm3\n\t"
        "tdpbf16ps %%tmm7, %%tmm6, %%tmm4\n\ttdpbf16ps %%tmm7, %%tmm6, %%tmm5" ::
            : "memory");
  return 0;
}
#else
constexpr bool kHasAmx = false;
float amx_chains(long) {
  return 0;
}
#endif

// One trial of `chains` (returning a value the compiler cannot drop) doing `flops_per_iteration`
// per iteration: the threads start together (a spinning barrier, so none is still being created
// while others run) and the trial lasts until the last one finishes.
double trial_gflops(float (*chains)(long), double flops_per_iteration, unsigned threads, long iterations) {
  std::atomic<unsigned> ready{0};
  std::atomic<bool> go{false};
  std::vector<float> sink(threads);
  std::vector<std::thread> workers;
  for (unsigned t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) {
      }
      sink[t] = chains(iterations);
    });
  }
  while (ready.load() < threads) {
  }
  const auto start = Clock::now();
  go.store(true, std::memory_order_release);
  for (auto& w : workers) w.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const double flops = flops_per_iteration * static_cast<double>(iterations) * threads;
  return flops / seconds / 1e9 + (sink[0] == 12345.f ? 1e-9 : 0.0);
}

// Sizes a trial to about 0.2 s (clocks ramp up and a short trial is all start-up), then keeps the
// best of five: a peak is the most the machine did, never an average with interruptions.
double peak_gflops(float (*chains)(long), double flops_per_iteration, unsigned threads) {
  const long probe = 1'000'000;
  const double probe_gflops = trial_gflops(chains, flops_per_iteration, 1, probe);
  const double per_thread_flops = 0.2 * probe_gflops * 1e9;
  const long iterations = std::max(probe, static_cast<long>(per_thread_flops / flops_per_iteration));
  double best = 0;
  for (int t = 0; t < 5; ++t) best = std::max(best, trial_gflops(chains, flops_per_iteration, threads, iterations));
  return best;
}

}  // namespace

double fma_peak_gflops(unsigned threads) {
  return peak_gflops(fma_chains, 2.0 * kLanes * kChains, threads);
}

double bf16_dot_peak_gflops(unsigned threads) {
  return kHasBf16Dot ? peak_gflops(bf16_dot_chains, 4.0 * 16 * kChains, threads) : 0.0;
}

double amx_bf16_peak_gflops(unsigned threads) {
  // host_cpu_features asks Linux for the tile data state, without which a tile instruction faults.
  const bool usable = kHasAmx && (host_cpu_features() & kCpuAmxBf16) != 0;
  return usable ? peak_gflops(amx_chains, 6.0 * 16 * 16 * 32 * 2, threads) : 0.0;
}

int fma_peak_vector_bits() {
  return kVectorBytes * 8;
}

}  // namespace switchyard::bench
