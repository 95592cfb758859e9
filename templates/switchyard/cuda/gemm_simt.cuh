// Batched GEMM on CUDA cores, for any storage type and layout (the fallback of gemm_mma and
// the fp32 path): 64x64 tiles of C per block, 4x4 per thread, fp32 accumulation.
#pragma once

#include <switchyard/common/gemm_args.h>
#include <switchyard/cuda/gemm_epilogue.cuh>

namespace switchyard {
namespace cuda {

template <typename T, int kN, int kK, bool kTransB, bool kBias, int kAct>
__global__ void __launch_bounds__(kernels::kGemmThreads) gemm_simt(kernels::GemmArgs args) {
  static_assert(kN > 0 && kK > 0, "gemm_simt: N and K must be positive");
  constexpr int kTile = kernels::kGemmSimtTile, kStep = 16;
  __shared__ float a_tile[kStep][kTile + 1];  // [k][m], padded against bank conflicts
  __shared__ float b_tile[kStep][kTile + 1];  // [k][n]
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
#pragma unroll
    for (int kk = 0; kk < kStep; ++kk) {
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
