// Batched GEMM on CUDA cores, for any storage type and layout (the fallback of gemm_mma and
// the fp32 path): 64x64 tiles of C per block, 4x4 per thread, fp32 accumulation.
#pragma once

#include <switchyard/common/gemm_args.h>
#include <switchyard/cuda/gemm_epilogue.cuh>

namespace switchyard {
namespace cuda {

constexpr int kSimtStep = 16;
typedef float SimtPanel[kSimtStep][kernels::kGemmSimtTile + 1];  // padded against bank conflicts

// Accumulates a_tile^T b_tile (one kSimtStep slice) into this thread's 4x4 block.
__device__ __forceinline__ void simt_step(const SimtPanel& a_tile, const SimtPanel& b_tile, float (&acc)[4][4]) {
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
#pragma unroll
  for (int kk = 0; kk < kSimtStep; ++kk) {
    float av[4], bv[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) av[i] = a_tile[kk][ty * 4 + i];
#pragma unroll
    for (int j = 0; j < 4; ++j) bv[j] = b_tile[kk][tx * 4 + j];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[i][j] += av[i] * bv[j];
  }
}

// The weight-gradient form: C [K, N] = A^T B, the reduction over the run-time rows. Blocks are
// numbered batch-major, then tiles of K, then tiles of N.
template <typename T, int kN, int kK>
__device__ __forceinline__ void gemm_simt_tn(const kernels::GemmArgs& args, SimtPanel& a_tile, SimtPanel& b_tile) {
  constexpr int kTile = kernels::kGemmSimtTile;
  constexpr int kTilesN = (kN + kTile - 1) / kTile, kTilesM = (kK + kTile - 1) / kTile;
  int block = blockIdx.x;
  const int n0 = (block % kTilesN) * kTile;
  block /= kTilesN;
  const int m0 = (block % kTilesM) * kTile, batch = block / kTilesM;
  const int reduce = kernels::rows_used(args.row_counts, batch, args.rows);
  const T* a = static_cast<const T*>(args.a) + args.a_batch_stride * batch;
  const T* b = static_cast<const T*>(args.b) + args.b_batch_stride * batch;
  float acc[4][4] = {};
  for (int r0 = 0; r0 < reduce; r0 += kSimtStep) {
    for (int i = threadIdx.x; i < kTile * kSimtStep; i += kernels::kGemmThreads) {
      const int kk = i / kTile, j = i % kTile, r = r0 + kk;
      a_tile[kk][j] = r < reduce && m0 + j < kK ? to_float(a[static_cast<long>(r) * kK + m0 + j]) : 0.0f;
      b_tile[kk][j] = r < reduce && n0 + j < kN ? to_float(b[static_cast<long>(r) * kN + n0 + j]) : 0.0f;
    }
    __syncthreads();
    simt_step(a_tile, b_tile, acc);
    __syncthreads();
  }
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  T* c = static_cast<T*>(args.c) + args.c_batch_stride * batch;
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int m = m0 + ty * 4 + i, n = n0 + tx * 4 + j;
      if (m < kK && n < kN) c[static_cast<long>(m) * kN + n] = from_float<T>(acc[i][j]);
    }
}

template <typename T, int kN, int kK, bool kTransA, bool kTransB, bool kBias, int kAct>
__global__ void __launch_bounds__(kernels::kGemmThreads) gemm_simt(kernels::GemmArgs args) {
  static_assert(kN > 0 && kK > 0, "gemm_simt: N and K must be positive");
  static_assert(!kTransA || (!kTransB && !kBias && kAct == kernels::kActNone),
                "gemm_simt: the trans_a (weight gradient) form has no B transpose, bias or epilogue");
  constexpr int kTile = kernels::kGemmSimtTile, kStep = kSimtStep;
  __shared__ SimtPanel a_tile;  // [k][m]
  __shared__ SimtPanel b_tile;  // [k][n]
  if (kTransA) {
    gemm_simt_tn<T, kN, kK>(args, a_tile, b_tile);
    return;
  }
  const GemmTile tile = gemm_tile<kTile, kTile, kN>(args);
  const int batch = tile.batch, rows = tile.rows, m0 = tile.m0, n0 = tile.n0;
  if (m0 >= rows) return;  // the whole block: before any barrier
  const T* a = static_cast<const T*>(args.a) + args.a_batch_stride * batch;
  const T* b = static_cast<const T*>(args.b) + args.b_batch_stride * batch;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  float acc[4][4] = {};
  for (int k0 = 0; k0 < kK; k0 += kStep) {
    for (int i = threadIdx.x; i < kTile * kStep; i += kernels::kGemmThreads) {
      const int r = i / kStep, kk = i % kStep, gm = m0 + r, gk = k0 + kk;
      a_tile[kk][r] = gm < rows && gk < kK ? to_float(a[static_cast<long>(gm) * kK + gk]) : 0.0f;
    }
    for (int i = threadIdx.x; i < kTile * kStep; i += kernels::kGemmThreads) {
      const int kk = i / kTile, n = i % kTile, gn = n0 + n, gk = k0 + kk;
      const long at = kTransB ? static_cast<long>(gn) * kK + gk : static_cast<long>(gk) * kN + gn;
      b_tile[kk][n] = gn < kN && gk < kK ? to_float(b[at]) : 0.0f;
    }
    __syncthreads();
    simt_step(a_tile, b_tile, acc);
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int m = m0 + ty * 4 + i, n = n0 + tx * 4 + j;
      if (m < rows && n < kN) gemm_store<T, kN, kBias, kAct>(args, batch, m, n, acc[i][j]);
    }
  }
}

}  // namespace cuda
}  // namespace switchyard
