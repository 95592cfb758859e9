// A GEMM micro-kernel's block of C in vector registers: kRows x kVecs vectors, each of
// sizeof(Vec) / sizeof(T) elements of C's rows (row pitch ldc), zeroed before the reduction and
// stored after it (C's values added then, where it accumulates), a step's vectors of B's panel,
// and the paced loop over the steps. The float and the bfloat16 dot-product micro-kernels share
// them.
#pragma once

namespace switchyard {
namespace cpu {

// Zeroes the block; where C is to be added (`load_c`), prefetches its lines, added only by
// finish_register_block: loaded here, C was the first operand of every accumulator's chain, and
// each micro-kernel call stalled for its lines (read from L3 once per reduction chunk).
template <typename Vec, int kRows, int kVecs, typename T>
inline void start_register_block(Vec (&acc)[kRows][kVecs], const T* c, long ldc, bool load_c) {
#pragma GCC unroll 8
  for (int r = 0; r < kRows; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < kVecs; ++v) acc[r][v] = Vec{};
    if (load_c) {
      __builtin_prefetch(c + r * ldc, 1, 3);
      __builtin_prefetch(c + r * ldc + kVecs * sizeof(Vec) / sizeof(T) - 1, 1, 3);
    }
  }
}

// One reduction step's kVecs vectors of a packed B panel, from `row` on.
template <typename Vec, int kVecs, typename T>
inline void load_panel_step(Vec (&bv)[kVecs], const T* row) {
  constexpr int kLanes = static_cast<int>(sizeof(Vec) / sizeof(T));
#pragma GCC unroll 4
  for (int v = 0; v < kVecs; ++v) __builtin_memcpy(&bv[v], row + v * kLanes, sizeof(Vec));
}

// Stores the block to C, adding C's values first where `add_c`.
template <typename Vec, int kRows, int kVecs, typename T>
inline void finish_register_block(Vec (&acc)[kRows][kVecs], T* c, long ldc, bool add_c) {
  constexpr int kLanes = static_cast<int>(sizeof(Vec) / sizeof(T));
#pragma GCC unroll 8
  for (int r = 0; r < kRows; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < kVecs; ++v) {
      if (add_c) {
        Vec old;
        __builtin_memcpy(&old, c + r * ldc + v * kLanes, sizeof(Vec));
        acc[r][v] += old;
      }
      __builtin_memcpy(c + r * ldc + v * kLanes, &acc[r][v], sizeof(Vec));
    }
}

// Runs `steps` reduction steps, `step(kk)` for each, in runs between the pacer's prefetches
// (`due()`: steps until the next; `ran(n)`: issues it where n steps reach it), so that the loop
// the FMAs are in holds nothing else: with a prefetch tick at every step, clang 16 split the loop,
// kept its countdown and two vectors on the stack, and the 6 x 2 ymm float kernel ran at 0.46 of
// the FMA peak on Zen 3. Always inlined: the accumulators live in the caller, and clang declined
// to inline this for the bfloat16 dot-product kernel (24 inline-assembly statements a step), which
// then kept them in memory, a load and a store around every dot product: 0.2 of the dot-product
// peak on Zen 5 (cpu_target_test checks every bfloat16 kernel's assembly for a call to this).
template <typename Pacer, typename Step>
__attribute__((always_inline)) inline void paced_steps(int steps, Pacer& pacer, Step&& step) {
  for (int kk = 0; kk < steps;) {
    const int due = pacer.due();
    const int end = steps - kk < due ? steps : kk + due;
    pacer.ran(end - kk);
    for (; kk < end; ++kk) [[clang::always_inline]] step(kk);
  }
}

}  // namespace cpu
}  // namespace switchyard
