// The CPU GEMM's packing of its operands (gemm.hpp): what a packed element is (the compute type,
// or bfloat16 pairs for the dot products), how deep a packed chunk is, and the packers of A's row
// tiles and of B's float panels, one column tile or a span of them at a time. gemm_pack_b.hpp
// packs a layer's weights ahead with the same packers.
#pragma once

#include <switchyard/cpu/gemm_amx.hpp>
#include <switchyard/cpu/gemm_bf16_dot.hpp>
#include <switchyard/cpu/prefetch_rows.hpp>
#include <switchyard/cpu/transpose.hpp>
#include <switchyard/cpu/types.hpp>

namespace switchyard {
namespace cpu {

// What the packed operands hold: the compute type, or with kDot pairs of bfloat16 (32 bits), and
// how many of them one row of A or column of B takes for k_len reduction steps.
template <typename T, bool kDot>
struct PackedType {
  using type = compute_t<T>;
};
template <typename T>
struct PackedType<T, true> {
  using type = unsigned;
};
template <typename T, bool kDot>
using packed_t = typename PackedType<T, kDot>::type;
template <bool kDot, bool kAmx = false>
inline int packed_depth(int k_len) {
  return kAmx ? amx_pair_depth(k_len) : kDot ? bf16_pair_depth(k_len) / 2 : k_len;
}
// Whether the micro-kernels can read B's panels packed ahead (gemm_pack_b.hpp): the dot products'
// pairs and float32's floats, not AMX's padded tiles nor the floats 16-bit values convert to
// (kernels::gemm_reads_packed_b says the same to the host).
template <typename T, bool kDot, bool kAmx>
constexpr bool kReadsPanels = !kAmx && (kDot || kIsFloat<T>);

// Packs A(m0 + r, k0 + kk) for r < kRowTile, kk < k_len as out[kk * kRowTile + r] (in the
// compute type), where A(m, kk) = a[m * kLda + kk], or a[kk * kLda + m] with kTransA; rows from
// `live` on are zero.
template <typename T, int kLda, bool kTransA, int kRowTile>
inline void gemm_pack_a(const T* a, compute_t<T>* out, int m0, int live, int k0, int k_len) {
  using A = compute_t<T>;
  if (kTransA) {
    for (int kk = 0; kk < k_len; ++kk) {
      const T* src = a + static_cast<long>(k0 + kk) * kLda + m0;
      for (int r = 0; r < kRowTile; ++r) out[kk * kRowTile + r] = r < live ? load(src[r]) : A(0);
    }
    return;
  }
  for (int r = 0; r < kRowTile; ++r) {
    const T* src = a + static_cast<long>(m0 + r) * kLda + k0;
    for (int kk = 0; kk < k_len; ++kk) out[kk * kRowTile + r] = r < live ? load(src[kk]) : A(0);
  }
}

// Packs B(k0 + kk, n0 + j) for kk < k_len, j < kCols as panel[kk * kCols + j], where
// B(kk, n) = b[kk * kN + n], or b[n * kLdb + kk] with kTransB (floats: blocks transposed in
// registers; 16-bit values converted 8 of a row's kk at a time, one row's reads in one cache line).
template <typename T, int kN, int kLdb, bool kTransB, int kCols>
inline void gemm_pack_b(const T* b, compute_t<T>* panel, int n0, int k0, int k_len) {
  if (!kTransB) {
    for (int kk = 0; kk < k_len; ++kk) {
      const T* src = b + static_cast<long>(k0 + kk) * kN + n0;
      load_run<T, kCols>(src, panel + kk * kCols);
    }
    return;
  }
  int kk0 = 0;
  // Blocks of floats transposed in registers: 4 x 4 for NEON's 12 columns and SSE's single vectors.
  if constexpr (sizeof(T) == 4 && kCols % 4 == 0) {
    constexpr int kBlock = kCols % 16 == 0 ? 16 : kCols % 8 == 0 ? 8 : 4;
    for (; kk0 + kBlock <= k_len; kk0 += kBlock)
      for (int j = 0; j < kCols; j += kBlock)
        transpose_block<kBlock>(b + static_cast<long>(n0 + j) * kLdb + k0 + kk0, kLdb * sizeof(T),
                                panel + kk0 * kCols + j, kCols * sizeof(T));
  }
  for (; kk0 + 8 <= k_len; kk0 += 8)
    for (int j = 0; j < kCols; ++j) {
      const T* src = b + static_cast<long>(n0 + j) * kLdb + k0 + kk0;
#pragma GCC unroll 8
      for (int q = 0; q < 8; ++q) panel[(kk0 + q) * kCols + j] = load(src[q]);
    }
  for (; kk0 < k_len; ++kk0)
    for (int j = 0; j < kCols; ++j) panel[kk0 * kCols + j] = load(b[static_cast<long>(n0 + j) * kLdb + k0 + kk0]);
}

// Packs `span` adjacent column tiles of B [K, N] at once as span panels of [k_len][kCols]: each
// row of B is read as one run of span * kCols elements, which the hardware prefetchers follow
// (a single tile's run is a cache line or two, a row pitch from the next), and the rows a few
// ahead are fetched meanwhile, past the chunk those of the next `next_cols` columns (prefetch_rows.hpp).
template <typename T, int kN, int kCols>
inline void gemm_pack_b_span(const T* b, compute_t<T>* panels, int n0, int k0, int k_len, int span, int next_cols) {
  for (int kk = 0; kk < k_len; ++kk) {
    prefetch_rows_ahead<kN>(b, k0, k0 + k_len, k0 + kk, 1, n0, span * kCols, next_cols);
    const T* src = b + static_cast<long>(k0 + kk) * kN + n0;
    for (int w = 0; w < span; ++w) {
      compute_t<T>* dst = panels + (static_cast<long>(w) * k_len + kk) * kCols;
      load_run<T, kCols>(src + w * kCols, dst);
    }
  }
}

}  // namespace cpu
}  // namespace switchyard
