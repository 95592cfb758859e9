// Bias + activation epilogue shared by the CUDA GEMM kernels.
#pragma once

#include <switchyard/common/gemm_args.h>
#include <switchyard/cuda/types.cuh>

namespace switchyard {
namespace cuda {

template <int kAct>
__device__ __forceinline__ float gemm_activate(float v, float aux) {
  if (kAct == kernels::kActRelu) return fmaxf(v, 0.0f);
  if (kAct == kernels::kActGelu) return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
  if (kAct == kernels::kActSilu) return v / (1.0f + __expf(-v));
  if (kAct == kernels::kActSwiglu) return aux / (1.0f + __expf(-aux)) * v;
  if (kAct == kernels::kActReluGrad) return aux > 0.0f ? v : 0.0f;
  if (kAct == kernels::kActGeluGrad)
    return v * (0.5f * (1.0f + erff(aux * 0.70710678118654752f)) + aux * 0.3989422804f * __expf(-0.5f * aux * aux));
  if (kAct == kernels::kActSiluGrad) {
    const float s = 1.0f / (1.0f + __expf(-aux));
    return v * s * (1.0f + aux * (1.0f - s));
  }
  return v;
}

// The C tile of this block: blocks are numbered batch-major, then row tiles, then column tiles.
struct GemmTile {
  int batch;
  int rows;  // rows of this batch (row_counts[batch] for grouped GEMMs)
  int m0;
  int n0;
};

template <int kTileM, int kTileN, int kN>
__device__ __forceinline__ GemmTile gemm_tile(const kernels::GemmArgs& args) {
  constexpr int kTilesN = (kN + kTileN - 1) / kTileN;
  const int tiles_m = (args.rows + kTileM - 1) / kTileM;
  int block = blockIdx.x;
  const int tn = block % kTilesN;
  block /= kTilesN;
  GemmTile tile;
  tile.batch = block / tiles_m;
  tile.rows = kernels::rows_used(args.row_counts, tile.batch, args.rows);
  tile.m0 = (block % tiles_m) * kTileM;
  tile.n0 = tn * kTileN;
  return tile;
}

// The weight gradient's block (C [K, N] = A^T B): output rows m0.. of K and columns n0.. of N for
// one batch, reduced over `reduce` rows (blocks batch-major, then row tiles of K, then column
// tiles, as gemm_launch_config counts them).
struct WeightGradientTile {
  int batch;
  int reduce;  // rows of this batch (row_counts[batch] for grouped GEMMs)
  int m0;
  int n0;
};

template <int kTileM, int kTileN, int kN, int kK>
__device__ __forceinline__ WeightGradientTile weight_gradient_tile(const kernels::GemmArgs& args) {
  constexpr int kTilesN = (kN + kTileN - 1) / kTileN, kTilesK = (kK + kTileM - 1) / kTileM;
  int block = blockIdx.x;
  WeightGradientTile tile;
  tile.n0 = block % kTilesN * kTileN;
  block /= kTilesN;
  tile.m0 = block % kTilesK * kTileM;
  tile.batch = block / kTilesK;
  tile.reduce = kernels::rows_used(args.row_counts, tile.batch, args.rows);
  return tile;
}

// Stores one output element: C[m, n] = act(v + bias[n]).
template <typename T, int kN, bool kBias, int kAct>
__device__ __forceinline__ void gemm_store(const kernels::GemmArgs& args, int batch, int m, int n, float v) {
  const long at = args.c_batch_stride * batch + static_cast<long>(m) * kN + n;
  if (kBias) v += to_float(static_cast<const T*>(args.bias)[static_cast<long>(kN) * batch + n]);
  const float aux = kernels::gemm_uses_aux(kAct) ? to_float(static_cast<const T*>(args.aux)[at]) : 0.0f;
  static_cast<T*>(args.c)[at] = from_float<T>(gemm_activate<kAct>(v, aux));
}

// The word that holds two adjacent elements of C: 4 bytes of 16-bit values, 8 of float32.
template <int kElementBytes>
struct GemmPairWord;
template <>
struct GemmPairWord<2> {
  using type = unsigned;
};
template <>
struct GemmPairWord<4> {
  using type = unsigned long long;
};

// An element's bits, for packing pairs.
__device__ __forceinline__ unsigned element_bits(half_t v) {
  return v.bits;
}
__device__ __forceinline__ unsigned element_bits(bf16_t v) {
  return v.bits;
}
__device__ __forceinline__ unsigned element_bits(float v) {
  return __float_as_uint(v);
}

// C[m, n] and C[m, n + 1] (n even) as the word that holds them.
template <typename T, int kN, bool kBias, int kAct>
__device__ __forceinline__ typename GemmPairWord<sizeof(T)>::type gemm_pair_bits(const kernels::GemmArgs& args,
                                                                                 int batch, int m, int n, float v0,
                                                                                 float v1) {
  using Word = typename GemmPairWord<sizeof(T)>::type;
  const long at = args.c_batch_stride * batch + static_cast<long>(m) * kN + n;
  if (kBias) {
    const T* bias = static_cast<const T*>(args.bias) + static_cast<long>(kN) * batch + n;
    v0 += to_float(bias[0]);
    v1 += to_float(bias[1]);
  }
  float aux0 = 0.0f, aux1 = 0.0f;
  if (kernels::gemm_uses_aux(kAct)) {
    const T* aux = static_cast<const T*>(args.aux) + at;
    aux0 = to_float(aux[0]);
    aux1 = to_float(aux[1]);
  }
  const Word low = element_bits(from_float<T>(gemm_activate<kAct>(v0, aux0)));
  const Word high = element_bits(from_float<T>(gemm_activate<kAct>(v1, aux1)));
  return low | (high << (8 * sizeof(T)));  // little-endian: n first
}

// Stores C[m, n] and C[m, n + 1] (n even) in one store of the word that holds them.
template <typename T, int kN, bool kBias, int kAct>
__device__ __forceinline__ void gemm_store_pair(const kernels::GemmArgs& args, int batch, int m, int n, float v0,
                                                float v1) {
  const long at = args.c_batch_stride * batch + static_cast<long>(m) * kN + n;
  *reinterpret_cast<typename GemmPairWord<sizeof(T)>::type*>(static_cast<T*>(args.c) + at) =
      gemm_pair_bits<T, kN, kBias, kAct>(args, batch, m, n, v0, v1);
}

// Stores a warp's 64x32 block of mma accumulators (4 x 4 tiles of 16x8, fp32 fragments in the
// m16n8 layout: lane/4 picks the row, lane%4 the column pair, +8 rows for the second half).
template <typename T, int kN, bool kBias, int kAct>
__device__ __forceinline__ void store_mma_tiles(const kernels::GemmArgs& args, int batch, int rows, int row0, int col0,
                                                const float (&acc)[4][4][4]) {
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int mi = 0; mi < 4; ++mi) {
#pragma unroll
    for (int ni = 0; ni < 4; ++ni) {
      const int row = row0 + mi * 16 + lane / 4, col = col0 + ni * 8 + (lane % 4) * 2;
      if (row < rows) {
        gemm_store<T, kN, kBias, kAct>(args, batch, row, col, acc[mi][ni][0]);
        gemm_store<T, kN, kBias, kAct>(args, batch, row, col + 1, acc[mi][ni][1]);
      }
      if (row + 8 < rows) {
        gemm_store<T, kN, kBias, kAct>(args, batch, row + 8, col, acc[mi][ni][2]);
        gemm_store<T, kN, kBias, kAct>(args, batch, row + 8, col + 1, acc[mi][ni][3]);
      }
    }
  }
}

}  // namespace cuda
}  // namespace switchyard
