// bfloat16 GEMM operands multiplied with AVX512_BF16's dot products (vdpbf16ps: each float lane
// adds the products of one pair of bfloat16 values along the reduction), twice the products per
// instruction of float FMAs on converted operands. The packed operands keep their 16 bits, in
// pairs of adjacent reduction steps: A as [kk / 2][row][2], B's panel as [kk / 2][column][2], an
// odd step's partner zero. gemm.hpp uses these where the spec says bf16_dot.
#pragma once

#include <switchyard/cpu/prefetch_rows.hpp>
#include <switchyard/cpu/register_block.hpp>
#include <switchyard/cpu/transpose.hpp>
#include <switchyard/cpu/types.hpp>

namespace switchyard {
namespace cpu {

template <typename T>
constexpr bool kIsBf16 = false;
template <>
constexpr bool kIsBf16<bf16_t> = true;

// Reduction steps [0, k_len) padded to whole pairs: the packed operands' depth.
constexpr int bf16_pair_depth(int k_len) {
  return (k_len + 1) & ~1;
}

inline unsigned bf16_pair(bf16_t low, bf16_t high) {
  return static_cast<unsigned>(low.bits) | static_cast<unsigned>(high.bits) << 16;
}

// 32 columns of two rows interleaved into 32 pairs in two 64-byte vectors (the compiler's
// zero-extending loads, shifts and ors ran at 256 bits and took a small batch's packing 10% longer).
__attribute__((always_inline)) inline void interleave_32(const bf16_t* __restrict low, const bf16_t* __restrict high,
                                                         unsigned* __restrict dst) {
  typedef unsigned short Half __attribute__((vector_size(64), aligned(2)));
  typedef unsigned short Out __attribute__((vector_size(64), aligned(4)));
  const Half a = *reinterpret_cast<const Half*>(low), b = *reinterpret_cast<const Half*>(high);
  *reinterpret_cast<Out*>(dst) = __builtin_shufflevector(a, b, 0, 32, 1, 33, 2, 34, 3, 35, 4, 36, 5, 37, 6, 38, 7, 39,
                                                         8, 40, 9, 41, 10, 42, 11, 43, 12, 44, 13, 45, 14, 46, 15, 47);
  *reinterpret_cast<Out*>(dst + 16) =
      __builtin_shufflevector(a, b, 16, 48, 17, 49, 18, 50, 19, 51, 20, 52, 21, 53, 22, 54, 23, 55, 24, 56, 25, 57, 26,
                              58, 27, 59, 28, 60, 29, 61, 30, 62, 31, 63);
}

// kCols columns of two rows (of B, or of A for A^T) interleaved into pairs (`high` null: the
// partner of an odd last step, zero).
template <int kCols>
__attribute__((always_inline)) inline void interleave_rows(const bf16_t* __restrict low, const bf16_t* __restrict high,
                                                           unsigned* __restrict dst) {
  if (high == nullptr) {
    for (int j = 0; j < kCols; ++j) dst[j] = bf16_pair(low[j], bf16_t{0});
    return;
  }
  int j = 0;
  for (; j + 32 <= kCols; j += 32) interleave_32(low + j, high + j, dst + j);
  for (; j < kCols; ++j) dst[j] = bf16_pair(low[j], high[j]);
}

// A(m0 + r, k0 + kk) for r < kRowTile, kk < k_len, packed as pairs out[kk / 2][r] (rows from `live`
// on, and the partner of an odd last step, are zero); A(m, kk) = a[m * kLda + kk], or a[kk * kLda + m]
// with kTransA.
template <int kLda, bool kTransA, int kRowTile>
inline void gemm_pack_a_pairs(const bf16_t* a, unsigned* out, int m0, int live, int k0, int k_len) {
  constexpr bf16_t zero{0};
  if constexpr (kTransA) {  // a whole tile's rows are adjacent in two rows of A: interleave them
    if (live == kRowTile) {
      for (int kk = 0; kk < k_len; kk += 2) {
        const bf16_t* low = a + static_cast<long>(k0 + kk) * kLda + m0;
        interleave_rows<kRowTile>(low, kk + 1 < k_len ? low + kLda : nullptr, out + kk / 2 * kRowTile);
      }
      return;
    }
  }
  for (int kk = 0; kk < k_len; kk += 2) {
    const bool both = kk + 1 < k_len;
    unsigned* dst = out + kk / 2 * kRowTile;
    for (int r = 0; r < kRowTile; ++r) {
      if (r >= live) {
        dst[r] = 0;
        continue;
      }
      const long m = m0 + r, k = k0 + kk;
      dst[r] = kTransA ? bf16_pair(a[k * kLda + m], both ? a[(k + 1) * kLda + m] : zero)
                       : bf16_pair(a[m * kLda + k], both ? a[m * kLda + k + 1] : zero);
    }
  }
}

// Zeroes pairs [from, to) of a panel of kCols columns of pairs: a panel deeper than its reduction
// (AMX's whole tiles) must not hold stale values there, which could be NaN (and NaN times A's
// zero is NaN).
template <int kCols>
inline void zero_pairs(unsigned* panel, int from, int to) {
  for (long i = static_cast<long>(from) * kCols; i < static_cast<long>(to) * kCols; ++i) panel[i] = 0;
}

// B(k0 + kk, n0 + j) for kk < k_len, j < kCols, packed as pairs panel[kk / 2][j], and zero pairs
// from there to `depth` pairs; B(kk, n) = b[kk * kN + n] (two rows interleaved), or
// b[n * kLdb + kk] with kTransB (a pair is adjacent).
template <int kN, int kLdb, bool kTransB, int kCols>
inline void gemm_pack_b_pairs(const bf16_t* b, unsigned* panel, int n0, int k0, int k_len, int depth) {
  static_assert(kCols % 16 == 0, "gemm_pack_b_pairs: whole 16-column blocks");
  int kk = 0;
  if (kTransB)  // 16 x 16 blocks of pairs (a cache line of each of 16 rows of B) transposed in registers
    for (; kk + 32 <= k_len; kk += 32)
      for (int j = 0; j < kCols; j += 16)
        transpose_block<16>(b + static_cast<long>(n0 + j) * kLdb + k0 + kk, kLdb * sizeof(bf16_t),
                            panel + kk / 2 * kCols + j, kCols * sizeof(unsigned));
  for (; kk < k_len; kk += 2) {
    const bool both = kk + 1 < k_len;
    unsigned* dst = panel + kk / 2 * kCols;
    if (kTransB) {
      for (int j = 0; j < kCols; ++j) {
        const bf16_t* src = b + static_cast<long>(n0 + j) * kLdb + k0 + kk;
        dst[j] = bf16_pair(src[0], both ? src[1] : bf16_t{0});
      }
    } else {
      const bf16_t* low = b + static_cast<long>(k0 + kk) * kN + n0;
      interleave_rows<kCols>(low, both ? low + kN : nullptr, dst);
    }
  }
  zero_pairs<kCols>(panel, bf16_pair_depth(k_len) / 2, depth);
}

// `span` adjacent column tiles of B [K, N] packed at once as span panels of pairs: each pair of
// B's rows is read as one run of span * kCols columns, which the hardware prefetchers follow (see
// gemm_pack_b_span). Each panel holds `depth` pairs of rows, zero past the k_len steps'. The rows
// ahead are fetched as gemm_pack_b_span does (prefetch_rows_ahead).
template <int kN, int kCols>
inline void gemm_pack_b_span_pairs(const bf16_t* b, unsigned* panels, int n0, int k0, int k_len, int span, int depth,
                                   int next_cols) {
  const long panel_pairs = static_cast<long>(depth) * kCols;
  for (int kk = 0; kk < k_len; kk += 2) {
    const bf16_t* low = b + static_cast<long>(k0 + kk) * kN + n0;
    const bf16_t* high = kk + 1 < k_len ? low + kN : nullptr;
    prefetch_rows_ahead<kN>(b, k0, k0 + k_len, k0 + kk, 2, n0, span * kCols, next_cols);
    for (int w = 0; w < span; ++w)
      interleave_rows<kCols>(low + w * kCols, high ? high + w * kCols : nullptr,
                             panels + w * panel_pairs + kk / 2 * kCols);
  }
  for (int w = 0; w < span; ++w) zero_pairs<kCols>(panels + w * panel_pairs, bf16_pair_depth(k_len) / 2, depth);
}

// acc = (load_c ? C : 0) + A B for a kRowTile x kVecs block of 16-float vectors of C (row pitch
// ldc), over `pairs` packed pairs of reduction steps (A's as [pair][kPackRows]). Each A pair is
// broadcast into a register once for its kVecs dot products: broadcast from memory inside each
// dot product, 28 loads a step instead of 10, the 6 x 4 block ran at 413 GFLOP/s a Zen 5 core
// in L1 instead of 472. `pacer` spaces the caller's prefetches.
template <int kRowTile, int kVecs, int kPackRows = kRowTile, typename Pacer>
inline void gemm_micro_bf16_dot(const unsigned* __restrict ap, const unsigned* __restrict bp, float* __restrict c,
                                long ldc, int pairs, bool load_c, Pacer& pacer) {
#if defined(__AVX512BF16__)
  typedef float Vec __attribute__((vector_size(64)));
  constexpr int kLanes = 16;
  Vec acc[kRowTile][kVecs];
  start_register_block(acc, c, ldc, load_c);
  paced_steps(pairs, pacer, [&](int q) {
    Vec bv[kVecs];
    load_panel_step(bv, bp + static_cast<long>(q) * kVecs * kLanes);
#pragma GCC unroll 8
    for (int r = 0; r < kRowTile; ++r) {
      Vec a;
      __asm__("vbroadcastss %1, %0" : "=v"(a) : "m"(ap[q * kPackRows + r]));
#pragma GCC unroll 4
      for (int v = 0; v < kVecs; ++v)
        // NOTE: inline assembly, because clang 16 crashes (endless recursion in its optimizer)
        // on the bitcasts to __m512bh that _mm512_dpbf16_ps needs, at -O1 and above.
        __asm__("vdpbf16ps %2, %1, %0" : "+v"(acc[r][v]) : "v"(a), "v"(bv[v]));
    }
  });
  finish_register_block(acc, c, ldc, load_c);
#else
  (void)ap, (void)bp, (void)c, (void)ldc, (void)pairs, (void)load_c, (void)pacer;
#endif
}

}  // namespace cpu
}  // namespace switchyard
