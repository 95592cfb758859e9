// Square blocks of 32-bit elements (floats, or bfloat16 pairs) transposed in vector registers, for
// packing a transposed operand: element by element, each read of a row pitch away missed the
// caches in turn, and the data gradient's B^T packing cost a fifth of its micro-kernel's time.
#pragma once

namespace switchyard {
namespace cpu {

typedef unsigned Bits32x16 __attribute__((vector_size(64)));
typedef unsigned Bits32x8 __attribute__((vector_size(32)));

// Interleaves the low halves (a0 b0 a1 b1 ...) or the high halves of two rows.
inline Bits32x16 interleave_low(Bits32x16 a, Bits32x16 b) {
  return __builtin_shufflevector(a, b, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
}
inline Bits32x16 interleave_high(Bits32x16 a, Bits32x16 b) {
  return __builtin_shufflevector(a, b, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
}
inline Bits32x8 interleave_low(Bits32x8 a, Bits32x8 b) {
  return __builtin_shufflevector(a, b, 0, 8, 1, 9, 2, 10, 3, 11);
}
inline Bits32x8 interleave_high(Bits32x8 a, Bits32x8 b) {
  return __builtin_shufflevector(a, b, 4, 12, 5, 13, 6, 14, 7, 15);
}

template <int kN>
struct Bits32Rows;
template <>
struct Bits32Rows<8> {
  using type = Bits32x8;
};
template <>
struct Bits32Rows<16> {
  using type = Bits32x16;
};

// Element (r, q) of a kN x kN block (kN 8 or 16) of 32-bit elements of any type, at src + r *
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
#pragma GCC unroll 8
    for (int i = 0; i < kN / 2; ++i) {
      next[2 * i] = interleave_low(rows[i], rows[i + kN / 2]);
      next[2 * i + 1] = interleave_high(rows[i], rows[i + kN / 2]);
    }
#pragma GCC unroll 16
    for (int r = 0; r < kN; ++r) rows[r] = next[r];
  }
#pragma GCC unroll 16
  for (int q = 0; q < kN; ++q) __builtin_memcpy(static_cast<char*>(dst) + q * dst_pitch, &rows[q], sizeof(Vec));
}

}  // namespace cpu
}  // namespace switchyard
