// Per-thread working memory for CPU kernels (the GEMM's packed A and float accumulator): each
// thread of the pool keeps one block, grown on demand and kept for the next launch, so a
// steady-state GEMM allocates nothing. Kernels reach it through the JIT linker (orc_loader.cpp).
#pragma once

#include <cstdint>

namespace switchyard {

/// At least `bytes` of 64-byte aligned memory owned by the calling thread, valid until its next
/// call; nullptr when the system has no memory (the kernel then works in smaller pieces).
extern "C" void* sy_cpu_thread_scratch(unsigned long bytes) noexcept;

/// How many times any thread's block had to be (re)allocated: unchanged across a steady state.
uint64_t cpu_scratch_allocations();

/// Tests: while `refused`, every thread is refused its scratch (nullptr), as when the system has
/// no memory left, so the kernels' fallbacks run.
void refuse_cpu_scratch_for_testing(bool refused);

}  // namespace switchyard
