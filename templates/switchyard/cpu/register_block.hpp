// A GEMM micro-kernel's block of C in vector registers: kRows x kVecs vectors, each of
// sizeof(Vec) / sizeof(T) elements of C's rows (row pitch ldc), loaded (or zeroed) before the
// reduction and stored after it, and a step's vectors of B's panel. The float and the bfloat16
// dot-product micro-kernels share them.
#pragma once

namespace switchyard {
namespace cpu {

template <typename Vec, int kRows, int kVecs, typename T>
inline void load_register_block(Vec (&acc)[kRows][kVecs], const T* c, long ldc, bool load_c) {
  constexpr int kLanes = static_cast<int>(sizeof(Vec) / sizeof(T));
#pragma GCC unroll 8
  for (int r = 0; r < kRows; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < kVecs; ++v) {
      if (load_c)
        __builtin_memcpy(&acc[r][v], c + r * ldc + v * kLanes, sizeof(Vec));
      else
        acc[r][v] = Vec{};
    }
}

// One reduction step's kVecs vectors of a packed B panel, from `row` on.
template <typename Vec, int kVecs, typename T>
inline void load_panel_step(Vec (&bv)[kVecs], const T* row) {
  constexpr int kLanes = static_cast<int>(sizeof(Vec) / sizeof(T));
#pragma GCC unroll 4
  for (int v = 0; v < kVecs; ++v) __builtin_memcpy(&bv[v], row + v * kLanes, sizeof(Vec));
}

template <typename Vec, int kRows, int kVecs, typename T>
inline void store_register_block(const Vec (&acc)[kRows][kVecs], T* c, long ldc) {
  constexpr int kLanes = static_cast<int>(sizeof(Vec) / sizeof(T));
#pragma GCC unroll 8
  for (int r = 0; r < kRows; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < kVecs; ++v) __builtin_memcpy(c + r * ldc + v * kLanes, &acc[r][v], sizeof(Vec));
}

}  // namespace cpu
}  // namespace switchyard
