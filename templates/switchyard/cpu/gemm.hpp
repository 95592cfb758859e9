// Batched GEMM on the CPU with a fused bias + activation epilogue (see common/gemm_args.h).
// Register-blocked: a kRowTile x (2 vectors) block of C lives in registers while a K chunk
// runs; vectors are GCC/clang vector extensions of kVecBytes (the host's widest). One call
// handles one block of the grid: a slice of row tiles of one batch. The same micro-kernel
// serves the three layouts: A B (forward), A B^T (B packed per panel) and A^T B (weight
// gradients, the reduction over the run-time rows).
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
  if (kAct == kernels::kActReluGrad) return value * relu_grad(*aux);
  if (kAct == kernels::kActGeluGrad) return value * gelu_grad(*aux);
  if (kAct == kernels::kActSiluGrad) return value * silu_grad(*aux);
  return value;
}

// Vectors per row of the register block. NOTE: 4 with zmm (a 6 x 4 block in 24 of the 32
// registers, 128-deep panels) measured slower than 2 on a Sapphire Rapids VM (mid fc1 88 against
// 128 GFLOP/s on 2 threads): the shallower panels doubled the passes over C.
constexpr int kGemmVecs = 2;

// Sums A(r, kk) * B(kk, j) over kk in [0, k_len) for a kRowTile x (kGemmVecs * kLanes) block into
// `tile`, where A(r, kk) = a[r * kLda + kk], or a[kk * kLda + r] with kTransA, and
// B(kk, j) = b[kk * kLdb + j]; a and b point at the block's first element. kFull: all
// kRowTile rows exist (no per-row test in the inner loop).
template <typename T, int kLda, int kLdb, bool kTransA, int kLanes, int kRowTile, bool kFull>
inline void gemm_block(const T* __restrict a, const T* __restrict b, T* __restrict tile, int live, int k_len) {
  typedef T Vec __attribute__((vector_size(sizeof(T) * kLanes)));
  Vec acc[kRowTile][kGemmVecs];
#pragma GCC unroll 8
  for (int r = 0; r < kRowTile; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < kGemmVecs; ++v) acc[r][v] = Vec{};
  int row_of[kRowTile];  // rows past `live` repeat row 0 so every load stays in bounds
  for (int r = 0; r < kRowTile; ++r) row_of[r] = kFull || r < live ? r : 0;
  for (int kk = 0; kk < k_len; ++kk) {
    Vec bv[kGemmVecs];
#pragma GCC unroll 4
    for (int v = 0; v < kGemmVecs; ++v)
      __builtin_memcpy(&bv[v], b + static_cast<long>(kk) * kLdb + v * kLanes, sizeof(Vec));
#pragma GCC unroll 8
    for (int r = 0; r < kRowTile; ++r) {
      const T x = kTransA ? a[static_cast<long>(kk) * kLda + row_of[r]] : a[static_cast<long>(row_of[r]) * kLda + kk];
#pragma GCC unroll 4
      for (int v = 0; v < kGemmVecs; ++v) acc[r][v] += x * bv[v];
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < kRowTile; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < kGemmVecs; ++v) __builtin_memcpy(tile + (r * kGemmVecs + v) * kLanes, &acc[r][v], sizeof(Vec));
}

// Sums the kRowTile x kGemmVecs block of the rows of A that exist (`live` of them) over k_len.
template <typename T, int kLda, int kLdb, bool kTransA, int kLanes, int kRowTile>
inline void gemm_block_rows(const T* a, const T* b, T* tile, int live, int k_len) {
  if (live == kRowTile)
    gemm_block<T, kLda, kLdb, kTransA, kLanes, kRowTile, true>(a, b, tile, live, k_len);
  else
    gemm_block<T, kLda, kLdb, kTransA, kLanes, kRowTile, false>(a, b, tile, live, k_len);
}

template <typename T, int kN, int kK, bool kTransB>
inline T gemm_dot(const T* a_row, const T* b, int n) {
  T sum = T(0);
  for (int k = 0; k < kK; ++k)
    sum += a_row[k] * (kTransB ? b[static_cast<long>(n) * kK + k] : b[static_cast<long>(k) * kN + n]);
  return sum;
}

// The share of `tiles` row tiles that block `part` of `per_batch` takes.
struct TileRange {
  int begin;
  int end;
};
inline TileRange tile_range(int tiles, unsigned part, unsigned per_batch) {
  return {static_cast<int>(static_cast<long>(tiles) * part / per_batch),
          static_cast<int>(static_cast<long>(tiles) * (part + 1) / per_batch)};
}

// NOTE: the reduction is cut into chunks; for each chunk and column tile, B's panel (kChunk x 2
// vectors, 32 KB of floats) is packed contiguously once and stays in L1 while every row tile of
// the block's range streams its A rows past it (a chunk of A for a whole expert, about 1 MB,
// stays in L2). Unpacked, B's rows lie N elements apart: for N = 4096 every row of a panel maps
// to the same L1 sets, and the panel fell out of L1 on each row tile.
constexpr int kGemmChunk = 256;

// C = epilogue(A op(B) + bias) for rows [range.begin, range.end) tiles of one batch.
template <typename T, int kN, int kK, bool kTransB, bool kBias, int kAct, int kLanes, int kRowTile>
void gemm_rows(const T* a, const T* b, const T* bias, const T* aux, T* c, int rows, TileRange range) {
  constexpr int kColTile = kGemmVecs * kLanes;
  constexpr int kChunk = kK < kGemmChunk ? kK : kGemmChunk;
  constexpr int kFullCols = kN / kColTile * kColTile;
  T tile[kRowTile * kColTile];
  alignas(64) T panel[kChunk * kColTile];  // op(B) of one chunk and column tile, packed as [k][j]
  for (int k0 = 0; k0 < kK; k0 += kChunk) {
    const int k1 = k0 + kChunk < kK ? k0 + kChunk : kK;
    for (int n0 = 0; n0 < kFullCols; n0 += kColTile) {
      for (int kk = k0; kk < k1; ++kk) {
        T* row = panel + (kk - k0) * kColTile;
        if (kTransB) {
          for (int j = 0; j < kColTile; ++j) row[j] = b[static_cast<long>(n0 + j) * kK + kk];
        } else {
          __builtin_memcpy(row, b + static_cast<long>(kk) * kN + n0, sizeof(T) * kColTile);
        }
      }
      for (int t = range.begin; t < range.end; ++t) {
        const int m0 = t * kRowTile;
        const int live = rows - m0 < kRowTile ? rows - m0 : kRowTile;
        const T* a_block = a + static_cast<long>(m0) * kK + k0;
        gemm_block_rows<T, kK, kColTile, false, kLanes, kRowTile>(a_block, panel, tile, live, k1 - k0);
        for (int r = 0; r < live; ++r) {
          const long at = static_cast<long>(m0 + r) * kN + n0;
          T* out = c + at;
          const T* part = tile + r * kColTile;
          for (int j = 0; j < kColTile; ++j) out[j] = k0 == 0 ? part[j] : out[j] + part[j];
          if (k1 == kK) {
            for (int j = 0; j < kColTile; ++j) {
              out[j] = gemm_epilogue<T, kAct>(out[j] + (kBias ? bias[n0 + j] : T(0)), aux ? aux + at + j : nullptr);
            }
          }
        }
      }
    }
  }
  // Columns past the last full tile (N not a multiple of the tile): plain dot products.
  for (int m = range.begin * kRowTile; m < range.end * kRowTile && m < rows; ++m) {
    for (int n = kFullCols; n < kN; ++n) {
      const long at = static_cast<long>(m) * kN + n;
      T v = gemm_dot<T, kN, kK, kTransB>(a + static_cast<long>(m) * kK, b, n) + (kBias ? bias[n] : T(0));
      c[at] = gemm_epilogue<T, kAct>(v, aux ? aux + at : nullptr);
    }
  }
}

// C [K, N] = A^T B over `reduce` rows (A [reduce, K], B [reduce, N]) for output row tiles
// [range.begin, range.end): the weight gradient of a forward GEMM with these N and K.
template <typename T, int kN, int kK, int kLanes, int kRowTile>
void gemm_rows_tn(const T* a, const T* b, T* c, int reduce, TileRange range) {
  constexpr int kColTile = kGemmVecs * kLanes;
  constexpr int kFullCols = kN / kColTile * kColTile;
  T tile[kRowTile * kColTile];
  const int first = range.begin * kRowTile, last = range.end * kRowTile < kK ? range.end * kRowTile : kK;
  for (long i = static_cast<long>(first) * kN; i < static_cast<long>(last) * kN; ++i) c[i] = T(0);
  alignas(64) T panel[kGemmChunk * kColTile];  // B's rows of one chunk and column tile, packed
  for (int r0 = 0; r0 < reduce; r0 += kGemmChunk) {
    const int r1 = r0 + kGemmChunk < reduce ? r0 + kGemmChunk : reduce;
    for (int n0 = 0; n0 < kFullCols; n0 += kColTile) {
      for (int r = r0; r < r1; ++r)
        __builtin_memcpy(panel + (r - r0) * kColTile, b + static_cast<long>(r) * kN + n0, sizeof(T) * kColTile);
      for (int t = range.begin; t < range.end; ++t) {
        const int m0 = t * kRowTile;
        const int live = kK - m0 < kRowTile ? kK - m0 : kRowTile;
        const T* a_block = a + static_cast<long>(r0) * kK + m0;
        gemm_block_rows<T, kK, kColTile, true, kLanes, kRowTile>(a_block, panel, tile, live, r1 - r0);
        for (int r = 0; r < live; ++r) {
          T* out = c + static_cast<long>(m0 + r) * kN + n0;
          for (int j = 0; j < kColTile; ++j) out[j] += tile[r * kColTile + j];
        }
      }
    }
  }
  for (int m = first; m < last; ++m) {
    for (int n = kFullCols; n < kN; ++n) {
      T sum = T(0);
      for (int r = 0; r < reduce; ++r) sum += a[static_cast<long>(r) * kK + m] * b[static_cast<long>(r) * kN + n];
      c[static_cast<long>(m) * kN + n] = sum;
    }
  }
}

template <typename T, int kN, int kK, bool kTransA, bool kTransB, bool kBias, int kAct, int kVecBytes, int kRowTile>
void gemm(const kernels::GemmArgs& args, unsigned block, unsigned grid) {
  static_assert(kN > 0 && kK > 0, "gemm: N and K must be positive");
  static_assert(kVecBytes % sizeof(T) == 0 && kVecBytes >= 16 && kVecBytes <= 64, "gemm: vec_bytes is 16, 32 or 64");
  static_assert(kRowTile >= 1 && kRowTile <= 8, "gemm: row tile must be in [1, 8]");
  static_assert(kAct >= kernels::kActNone && kAct <= kernels::kActSiluGrad, "gemm: unknown activation");
  static_assert(!kTransA || (!kTransB && !kBias && kAct == kernels::kActNone),
                "gemm: the trans_a (weight gradient) form has no B transpose, bias or epilogue");
  constexpr int kLanes = kVecBytes / static_cast<int>(sizeof(T));
  // Blocks are laid out batch-major; each takes an equal share of its batch's row tiles.
  const unsigned per_batch = grid / static_cast<unsigned>(args.batch);
  const int batch = static_cast<int>(block / per_batch);
  const unsigned part = block % per_batch;
  const int rows = kernels::rows_used(args.row_counts, batch, args.rows);
  const T* a = static_cast<const T*>(args.a) + args.a_batch_stride * batch;
  const T* b = static_cast<const T*>(args.b) + args.b_batch_stride * batch;
  T* c = static_cast<T*>(args.c) + args.c_batch_stride * batch;
  if (kTransA) {
    gemm_rows_tn<T, kN, kK, kLanes, kRowTile>(a, b, c, rows,
                                              tile_range((kK + kRowTile - 1) / kRowTile, part, per_batch));
    return;
  }
  const T* bias = kBias ? static_cast<const T*>(args.bias) + static_cast<long>(kN) * batch : nullptr;
  const T* aux = kernels::gemm_uses_aux(kAct) ? static_cast<const T*>(args.aux) + args.c_batch_stride * batch : nullptr;
  gemm_rows<T, kN, kK, kTransB, kBias, kAct, kLanes, kRowTile>(
      a, b, bias, aux, c, rows, tile_range((rows + kRowTile - 1) / kRowTile, part, per_batch));
}

}  // namespace cpu
}  // namespace switchyard
