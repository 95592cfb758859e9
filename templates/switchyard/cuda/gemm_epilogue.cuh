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
  tile.rows = args.row_counts ? args.row_counts[tile.batch] : args.rows;
  tile.m0 = (block % tiles_m) * kTileM;
  tile.n0 = tn * kTileN;
  return tile;
}

// Stores one output element: C[m, n] = act(v + bias[n]).
template <typename T, int kN, bool kBias, int kAct>
__device__ __forceinline__ void gemm_store(const kernels::GemmArgs& args, int batch, int m, int n, float v) {
  const long at = args.c_batch_stride * batch + static_cast<long>(m) * kN + n;
  if (kBias) v += to_float(static_cast<const T*>(args.bias)[static_cast<long>(kN) * batch + n]);
  const float aux = kAct == kernels::kActSwiglu ? to_float(static_cast<const T*>(args.aux)[at]) : 0.0f;
  static_cast<T*>(args.c)[at] = from_float<T>(gemm_activate<kAct>(v, aux));
}

}  // namespace cuda
}  // namespace switchyard
