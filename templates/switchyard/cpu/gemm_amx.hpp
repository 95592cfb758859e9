// bfloat16 GEMM operands multiplied on AMX's tiles (tdpbf16ps: a 16 x 16 float tile of C plus a
// 16-row tile of A's pairs times a 16-pair tile of B's, 16 x 16 x 32 products in one instruction;
// Sapphire Rapids and later), where AVX512_BF16's dot products reach a tenth of oneDNN's AMX
// matmul. B's panel is packed in pairs as for the dot products ([pair][column], gemm_bf16_dot.hpp),
// whose 16 columns of 16 pairs are a B tile in place; A is packed as [pair / 16][row][16 pairs],
// each 16 x 16 block an A tile. Both are zero past the reduction to whole tiles of 16 pairs.
// gemm.hpp uses these where the spec says amx.
#pragma once

#include <switchyard/cpu/amx_tiles.hpp>
#include <switchyard/cpu/gemm_bf16_dot.hpp>
#include <switchyard/cpu/transpose.hpp>
#include <switchyard/cpu/types.hpp>

namespace switchyard {
namespace cpu {

constexpr int kAmxPairs = 16;  // pairs of reduction steps in a row of an A tile, or rows of a B tile

// Pairs of reduction steps [0, k_len) padded to whole tiles: the AMX operands' depth.
inline int amx_pair_depth(int k_len) {
  return (k_len + 2 * kAmxPairs - 1) / (2 * kAmxPairs) * kAmxPairs;
}

// The tiles configured where kUse: gemm_rows holds one, of nothing without amx.
template <bool kUse>
struct AmxTilesFor {};
template <>
struct AmxTilesFor<true> : AmxTiles {};

// A(m0 + r, k0 + kk) for r < kAmxRows, kk < k_len, packed as out[kk / 32][r][kk % 32 / 2] pairs,
// zero from row `live` on and past k_len; A(m, kk) = a[m * kLda + kk], or a[kk * kLda + m] with
// kTransA. A row's pairs are adjacent in A itself: copied; A^T's are interleaved from two rows
// (gemm_pack_a_pairs) and each 16 x 16 block of pairs transposed.
template <int kLda, bool kTransA>
inline void gemm_pack_a_amx(const bf16_t* a, unsigned* out, int m0, int live, int k0, int k_len) {
  const int depth = amx_pair_depth(k_len);
  constexpr int kTile = kAmxRows * kAmxPairs;
  if constexpr (kTransA) {
    alignas(64) unsigned pairs[kTile];
    for (int q0 = 0; q0 < depth; q0 += kAmxPairs) {
      const int steps = 2 * kAmxPairs < k_len - 2 * q0 ? 2 * kAmxPairs : k_len - 2 * q0;
      if (steps < 2 * kAmxPairs)
        for (int i = 0; i < kTile; ++i) pairs[i] = 0;
      if (steps > 0) gemm_pack_a_pairs<kLda, true, kAmxRows>(a, pairs, m0, live, k0 + 2 * q0, steps);
      transpose_block<16>(pairs, kAmxRows * 4, out + q0 * kAmxRows, kAmxPairs * 4);
    }
  } else {
    for (int q0 = 0; q0 < depth; q0 += kAmxPairs) {
      unsigned* tile = out + q0 * kAmxRows;
      for (int r = 0; r < kAmxRows; ++r) {
        unsigned* row = tile + r * kAmxPairs;
        if (r >= live) {
          for (int q = 0; q < kAmxPairs; ++q) row[q] = 0;
          continue;
        }
        const bf16_t* src = a + static_cast<long>(m0 + r) * kLda + k0 + 2 * q0;
        if (2 * (q0 + kAmxPairs) <= k_len) {
          __builtin_memcpy(row, src, kAmxPairs * 4);
          continue;
        }
        for (int q = 0; q < kAmxPairs; ++q) {
          const int kk = 2 * (q0 + q);
          row[q] = kk >= k_len ? 0u : bf16_pair(src[2 * q], kk + 1 < k_len ? src[2 * q + 1] : bf16_t{0});
        }
      }
    }
  }
}

#if defined(__AMX_TILE__) && defined(__AMX_BF16__)
// Tile numbers are part of the instructions: C in tmm0..tmm3, A in tmm4, B in tmm5..tmm7 in turn.
#define SY_AMX_LOAD(tile, base, stride) \
  __asm__ volatile("tileloadd (%0,%1,1), %%tmm" #tile : : "r"(base), "r"(stride) : "memory")
#define SY_AMX_STORE(tile, base, stride) \
  __asm__ volatile("tilestored %%tmm" #tile ", (%0,%1,1)" : : "r"(base), "r"(stride) : "memory")
#define SY_AMX_ZERO(tile) __asm__ volatile("tilezero %%tmm" #tile ::: "memory")
// C tile `c` += A (tmm4) times B tile `b` (AT&T order: B, A, C).
#define SY_AMX_DOT(c, b) __asm__ volatile("tdpbf16ps %%tmm" #b ", %%tmm4, %%tmm" #c ::: "memory")

// The kVecs C tiles (from `c`, pitch in bytes) loaded, or zeroed.
template <int kVecs>
inline void amx_start_c(const float* c, long pitch, bool load_c) {
  if (load_c) {
    SY_AMX_LOAD(0, c, pitch);
    if constexpr (kVecs > 1) SY_AMX_LOAD(1, c + kAmxCols, pitch);
    if constexpr (kVecs > 2) SY_AMX_LOAD(2, c + 2 * kAmxCols, pitch);
    if constexpr (kVecs > 3) SY_AMX_LOAD(3, c + 3 * kAmxCols, pitch);
    return;
  }
  SY_AMX_ZERO(0);
  if constexpr (kVecs > 1) SY_AMX_ZERO(1);
  if constexpr (kVecs > 2) SY_AMX_ZERO(2);
  if constexpr (kVecs > 3) SY_AMX_ZERO(3);
}

template <int kVecs>
inline void amx_store_c(float* c, long pitch) {
  SY_AMX_STORE(0, c, pitch);
  if constexpr (kVecs > 1) SY_AMX_STORE(1, c + kAmxCols, pitch);
  if constexpr (kVecs > 2) SY_AMX_STORE(2, c + 2 * kAmxCols, pitch);
  if constexpr (kVecs > 3) SY_AMX_STORE(3, c + 3 * kAmxCols, pitch);
}

// One tile step: A's 16 x 16 pairs at `ap`, B's 16 pairs of kVecs x 16 columns at `bp` (pitch in
// bytes), into the C tiles.
template <int kVecs>
inline void amx_step(const unsigned* ap, const unsigned* bp, long b_pitch) {
  constexpr long kAPitch = kAmxPairs * 4;
  SY_AMX_LOAD(4, ap, kAPitch);
  SY_AMX_LOAD(5, bp, b_pitch);
  SY_AMX_DOT(0, 5);
  if constexpr (kVecs > 1) {
    SY_AMX_LOAD(6, bp + kAmxCols, b_pitch);
    SY_AMX_DOT(1, 6);
  }
  if constexpr (kVecs > 2) {
    SY_AMX_LOAD(7, bp + 2 * kAmxCols, b_pitch);
    SY_AMX_DOT(2, 7);
  }
  if constexpr (kVecs > 3) {
    SY_AMX_LOAD(5, bp + 3 * kAmxCols, b_pitch);
    SY_AMX_DOT(3, 5);
  }
}
#undef SY_AMX_LOAD
#undef SY_AMX_STORE
#undef SY_AMX_ZERO
#undef SY_AMX_DOT
#endif

// acc = (load_c ? C : 0) + A B for the `live` rows (at most 16) of kVecs 16-float columns of C
// (row pitch ldc), over `pairs` (whole tiles) of packed pairs. A block of fewer than 16 rows goes
// through a copy, so rows past C's end are never touched. `pacer` spaces the caller's prefetches,
// one of its steps a tile step.
template <int kVecs, typename Pacer>
inline void gemm_micro_amx(const unsigned* __restrict ap, const unsigned* __restrict bp, float* __restrict c, long ldc,
                           int live, int pairs, bool load_c, Pacer& pacer) {
#if defined(__AMX_TILE__) && defined(__AMX_BF16__)
  constexpr int kCols = kVecs * kAmxCols;
  alignas(64) float part[kAmxRows * kCols];
  float* tile_c = c;
  long pitch = ldc * static_cast<long>(sizeof(float));
  if (live < kAmxRows) {
    tile_c = part;
    pitch = kCols * static_cast<long>(sizeof(float));
    if (load_c)
      for (int r = 0; r < live; ++r) __builtin_memcpy(part + r * kCols, c + r * ldc, sizeof(float) * kCols);
  }
  amx_start_c<kVecs>(tile_c, pitch, load_c);
  paced_steps(pairs / kAmxPairs, pacer, [&](int s) {
    amx_step<kVecs>(ap + static_cast<long>(s) * kAmxRows * kAmxPairs, bp + static_cast<long>(s) * kAmxPairs * kCols,
                    kCols * static_cast<long>(sizeof(unsigned)));
  });
  amx_store_c<kVecs>(tile_c, pitch);
  if (live < kAmxRows)
    for (int r = 0; r < live; ++r) __builtin_memcpy(c + r * ldc, part + r * kCols, sizeof(float) * kCols);
#else
  (void)ap, (void)bp, (void)c, (void)ldc, (void)live, (void)pairs, (void)load_c, (void)pacer;
#endif
}

}  // namespace cpu
}  // namespace switchyard
