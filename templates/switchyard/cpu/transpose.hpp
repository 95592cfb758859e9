// Square blocks of 32-bit elements (floats, or bfloat16 pairs) transposed in vector registers, for
// packing a transposed operand: element by element, each read of a row pitch away missed the
// caches in turn, and the data gradient's B^T packing cost a fifth of its micro-kernel's time.
#pragma once

namespace switchyard {
namespace cpu {

typedef unsigned Bits32x16 __attribute__((vector_size(64)));
typedef unsigned Bits32x8 __attribute__((vector_size(32)));
typedef unsigned Bits32x4 __attribute__((vector_size(16)));

template <int kN>
struct Bits32Rows;
template <>
struct Bits32Rows<4> {
  using type = Bits32x4;
};
template <>
struct Bits32Rows<8> {
  using type = Bits32x8;
};
template <>
struct Bits32Rows<16> {
  using type = Bits32x16;
};

// Element (r, q) of a kN x kN block (kN 4, 8 or 16) of 32-bit elements of any type, at src + r *
// src_pitch + 4 q bytes, written to dst + q * dst_pitch + 4 r bytes (pitches in bytes; no
// alignment assumed). Each round interleaves row i with row i + kN / 2 (the perfect shuffle);
// log2(kN) rounds transpose the block.
template <int kN>
inline void transpose_block(const void* src, long src_pitch, void* dst, long dst_pitch) {
  using Vec = typename Bits32Rows<kN>::type;
  Vec rows[kN], next[kN];
#pragma GCC unroll 16
  for (int r = 0; r < kN; ++r) __builtin_memcpy(&rows[r], static_cast<const char*>(src) + r * src_pitch, sizeof(Vec));
#pragma GCC unroll 4
  for (int round = 1; round < kN; round *= 2) {
    // NOTE: the shuffles inline, not in helpers taking vectors by value: clang warns that such an
    // argument "changes the ABI" where the CPU compiled for has narrower registers (SSE, AVX2).
#pragma GCC unroll 8
    for (int i = 0; i < kN / 2; ++i) {
      if constexpr (kN == 16) {
        next[2 * i] =
            __builtin_shufflevector(rows[i], rows[i + 8], 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        next[2 * i + 1] =
            __builtin_shufflevector(rows[i], rows[i + 8], 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
      } else if constexpr (kN == 8) {
        next[2 * i] = __builtin_shufflevector(rows[i], rows[i + 4], 0, 8, 1, 9, 2, 10, 3, 11);
        next[2 * i + 1] = __builtin_shufflevector(rows[i], rows[i + 4], 4, 12, 5, 13, 6, 14, 7, 15);
      } else {
        next[2 * i] = __builtin_shufflevector(rows[i], rows[i + 2], 0, 4, 1, 5);
        next[2 * i + 1] = __builtin_shufflevector(rows[i], rows[i + 2], 2, 6, 3, 7);
      }
    }
#pragma GCC unroll 16
    for (int r = 0; r < kN; ++r) rows[r] = next[r];
  }
#pragma GCC unroll 16
  for (int q = 0; q < kN; ++q) __builtin_memcpy(static_cast<char*>(dst) + q * dst_pitch, &rows[q], sizeof(Vec));
}

}  // namespace cpu
}  // namespace switchyard
