// Batched GEMM on the CPU with a fused bias + activation epilogue (see common/gemm_args.h).
// Register-blocked: a kRowTile x (2 vectors) block of C lives in registers while the whole K
// loop runs; vectors are GCC/clang vector extensions of kVecBytes (the host's widest). One call
// handles one block of the grid: a slice of row tiles of one batch.
#pragma once

#include <switchyard/common/gemm_args.h>
#include <switchyard/cpu/math.hpp>

namespace switchyard {
namespace cpu {

template <typename T, int kAct>
inline T gemm_epilogue(T value, const T* aux) {
  if (kAct == kernels::kActRelu) return relu(value);
  if (kAct == kernels::kActGelu) return gelu(value);
  if (kAct == kernels::kActSilu) return silu(value);
  if (kAct == kernels::kActSwiglu) return silu(*aux) * value;
  return value;
}

// Sums A[m0 + r, k] * B(k, n0 + j) over k in [k0, k1) for a kRowTile x (2 * kLanes) block into
// `tile`. kFull: all kRowTile rows exist (no per-row test in the inner loop).
template <typename T, int kN, int kK, bool kTransB, int kLanes, int kRowTile, bool kFull>
inline void gemm_block(const T* __restrict a, const T* __restrict b, T* __restrict tile, int m0, int live, int n0,
                       int k0, int k1) {
  typedef T Vec __attribute__((vector_size(sizeof(T) * kLanes)));
  Vec acc[kRowTile][2];
  for (int r = 0; r < kRowTile; ++r) acc[r][0] = acc[r][1] = Vec{};
  const T* rows[kRowTile];
  for (int r = 0; r < kRowTile; ++r) rows[r] = a + static_cast<long>(m0 + (kFull || r < live ? r : 0)) * kK;
  for (int k = k0; k < k1; ++k) {
    Vec b0, b1;
    if (kTransB) {
      for (int l = 0; l < kLanes; ++l) {
        b0[l] = b[static_cast<long>(n0 + l) * kK + k];
        b1[l] = b[static_cast<long>(n0 + kLanes + l) * kK + k];
      }
    } else {
      __builtin_memcpy(&b0, b + static_cast<long>(k) * kN + n0, sizeof(Vec));
      __builtin_memcpy(&b1, b + static_cast<long>(k) * kN + n0 + kLanes, sizeof(Vec));
    }
#pragma GCC unroll 8
    for (int r = 0; r < kRowTile; ++r) {
      const T x = rows[r][k];
      acc[r][0] += x * b0;
      acc[r][1] += x * b1;
    }
  }
  for (int r = 0; r < kRowTile; ++r) {
    __builtin_memcpy(tile + r * 2 * kLanes, &acc[r][0], sizeof(Vec));
    __builtin_memcpy(tile + r * 2 * kLanes + kLanes, &acc[r][1], sizeof(Vec));
  }
}

template <typename T, int kN, int kK, bool kTransB>
inline T gemm_dot(const T* a_row, const T* b, int n) {
  T sum = T(0);
  for (int k = 0; k < kK; ++k)
    sum += a_row[k] * (kTransB ? b[static_cast<long>(n) * kK + k] : b[static_cast<long>(k) * kN + n]);
  return sum;
}

template <typename T, int kN, int kK, bool kTransB, bool kBias, int kAct, int kVecBytes, int kRowTile>
void gemm(const kernels::GemmArgs& args, unsigned block, unsigned grid) {
  static_assert(kN > 0 && kK > 0, "gemm: N and K must be positive");
  static_assert(kVecBytes % sizeof(T) == 0 && kVecBytes >= 16 && kVecBytes <= 64, "gemm: vec_bytes is 16, 32 or 64");
  static_assert(kRowTile >= 1 && kRowTile <= 8, "gemm: row tile must be in [1, 8]");
  static_assert(kAct >= kernels::kActNone && kAct <= kernels::kActSwiglu, "gemm: unknown activation");
  constexpr int kLanes = kVecBytes / static_cast<int>(sizeof(T));
  constexpr int kColTile = 2 * kLanes;
  // Blocks are laid out batch-major; each takes an equal share of its batch's row tiles.
  const unsigned per_batch = grid / static_cast<unsigned>(args.batch);
  const int batch = static_cast<int>(block / per_batch);
  const unsigned part = block % per_batch;
  const int rows = args.row_counts ? args.row_counts[batch] : args.rows;
  const int tiles = (rows + kRowTile - 1) / kRowTile;
  const int tile_begin = static_cast<int>(static_cast<long>(tiles) * part / per_batch);
  const int tile_end = static_cast<int>(static_cast<long>(tiles) * (part + 1) / per_batch);
  const T* a = static_cast<const T*>(args.a) + args.a_batch_stride * batch;
  const T* b = static_cast<const T*>(args.b) + args.b_batch_stride * batch;
  const T* bias = kBias ? static_cast<const T*>(args.bias) + static_cast<long>(kN) * batch : nullptr;
  const T* aux = kAct == kernels::kActSwiglu ? static_cast<const T*>(args.aux) + args.c_batch_stride * batch : nullptr;
  T* c = static_cast<T*>(args.c) + args.c_batch_stride * batch;
  T tile[kRowTile * kColTile];
  constexpr int kFullCols = kN / kColTile * kColTile;
  // NOTE: K is cut into chunks and rows into groups of tiles so that the A rows of a group and
  // the B panel of a chunk stay in cache while every column tile reuses them; partial sums
  // accumulate in C, and the epilogue runs once the last chunk is in.
  constexpr int kChunk = kK < 256 ? kK : 256;
  constexpr int kTileGroup = 8;
  for (int k0 = 0; k0 < kK; k0 += kChunk) {
    const int k1 = k0 + kChunk < kK ? k0 + kChunk : kK;
    for (int g = tile_begin; g < tile_end; g += kTileGroup) {
      const int g_end = g + kTileGroup < tile_end ? g + kTileGroup : tile_end;
      for (int n0 = 0; n0 < kFullCols; n0 += kColTile) {
        for (int t = g; t < g_end; ++t) {
          const int m0 = t * kRowTile;
          const int live = rows - m0 < kRowTile ? rows - m0 : kRowTile;
          if (live == kRowTile)
            gemm_block<T, kN, kK, kTransB, kLanes, kRowTile, true>(a, b, tile, m0, live, n0, k0, k1);
          else
            gemm_block<T, kN, kK, kTransB, kLanes, kRowTile, false>(a, b, tile, m0, live, n0, k0, k1);
          for (int r = 0; r < live; ++r) {
            T* out = c + static_cast<long>(m0 + r) * kN + n0;
            const T* part = tile + r * kColTile;
            if (k0 == 0) {
              for (int j = 0; j < kColTile; ++j) out[j] = part[j];
            } else {
              for (int j = 0; j < kColTile; ++j) out[j] += part[j];
            }
            if (k1 == kK) {
              const long at = static_cast<long>(m0 + r) * kN + n0;
              for (int j = 0; j < kColTile; ++j) {
                out[j] = gemm_epilogue<T, kAct>(out[j] + (kBias ? bias[n0 + j] : T(0)), aux ? aux + at + j : nullptr);
              }
            }
          }
        }
      }
    }
  }
  // Columns past the last full tile (N not a multiple of the tile): plain dot products.
  for (int m = tile_begin * kRowTile; m < tile_end * kRowTile && m < rows; ++m) {
    for (int n = kFullCols; n < kN; ++n) {
      const long at = static_cast<long>(m) * kN + n;
      T v = gemm_dot<T, kN, kK, kTransB>(a + static_cast<long>(m) * kK, b, n) + (kBias ? bias[n] : T(0));
      c[at] = gemm_epilogue<T, kAct>(v, aux ? aux + at : nullptr);
    }
  }
}

}  // namespace cpu
}  // namespace switchyard
