// Batched GEMM on tensor cores (sm_80+) for float16 and bfloat16: 128x128x32 block tiles in
// 8 warps of 64x32, mma.sync m16n8k16 with fp32 accumulators, ldmatrix from shared memory, and
// a two-stage cp.async pipeline that loads the next K slice while this one is multiplied.
// B is [K, N] (read with ldmatrix's transpose) or, with kTransB (the data gradient's W^T),
// [N, K], whose rows are the mma's column fragments as they stand.
// Requires N % 128 == 0 and K % 32 == 0 (the tile rule sends other shapes to gemm_simt);
// rows are predicated (zero-filled loads, guarded stores). With kTransA, the weight gradient
// C [K, N] = A^T B reduced over the run-time rows (each batch's count when grouped): both tiles
// [32 rows][128 columns], A^T's fragments through ldmatrix's transpose, rows past the count
// zero-filled by the loads (K % 128 == 0).
#pragma once

#include <switchyard/common/gemm_args.h>
#include <switchyard/cuda/gemm_epilogue.cuh>
#include <switchyard/cuda/mma.cuh>

namespace switchyard {
namespace cuda {

// The weight gradient's block (weight_gradient_tile).
template <typename T, int kN, int kK>
__device__ __forceinline__ void gemm_mma_weight_gradient(const kernels::GemmArgs& args) {
  constexpr int kBM = kernels::kGemmMmaTileM, kBN = kernels::kGemmMmaTileN, kBK = kernels::kGemmMmaTileK;
  static_assert(kK % kBM == 0, "gemm_mma: the weight gradient's K in whole 128-row tiles");
  constexpr int kStride = kBM + 8;  // [kBK reduction rows][128 columns], padded (16-byte multiples)
  alignas(16) __shared__ unsigned short a_smem[2][kBK * kStride];
  alignas(16) __shared__ unsigned short b_smem[2][kBK * kStride];
  const WeightGradientTile tile = weight_gradient_tile<kBM, kBN, kN, kK>(args);
  const int batch = tile.batch, reduce = tile.reduce, m0 = tile.m0, n0 = tile.n0;
  using E = unsigned short;
  const E* a = static_cast<const E*>(args.a) + args.a_batch_stride * batch + m0;
  const E* b = static_cast<const E*>(args.b) + args.b_batch_stride * batch + n0;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int warp_m = (warp / 4) * 64, warp_n = (warp % 4) * 32;
  auto load_stage = [&](int stage, int r0) {  // rows past the count: zeros (NaN there must not count)
    cp_async_tile<E, kBK, kBM, kStride, kernels::kGemmThreads>(a_smem[stage], a + static_cast<long>(r0) * kK, kK,
                                                               reduce - r0);
    cp_async_tile<E, kBK, kBN, kStride, kernels::kGemmThreads>(b_smem[stage], b + static_cast<long>(r0) * kN, kN,
                                                               reduce - r0);
    cp_async_commit();
  };
  float acc[4][4][4] = {};
  const int steps = (reduce + kBK - 1) / kBK;
  if (steps > 0) load_stage(0, 0);
  for (int step = 0; step < steps; ++step) {
    const int stage = step & 1;
    cp_async_next_stage<kBK>(step, steps, load_stage);
#pragma unroll
    for (int kk = 0; kk < kBK; kk += 16) {
      unsigned af[4][4], bf[4][2];
#pragma unroll
      for (int mi = 0; mi < 4; ++mi) {  // lanes 8j..8j+7: reduction rows kk + 8 (j / 2).., columns + 8 (j % 2)
        const int row = kk + (lane / 16) * 8 + lane % 8, col = warp_m + mi * 16 + (lane / 8) % 2 * 8;
        ldmatrix_x4_trans(af[mi], shared_address(&a_smem[stage][row * kStride + col]));
      }
#pragma unroll
      for (int ni = 0; ni < 4; ++ni) {
        const int row = kk + lane % 16, col = warp_n + ni * 8;
        ldmatrix_x2_trans(bf[ni], shared_address(&b_smem[stage][row * kStride + col]));
      }
#pragma unroll
      for (int mi = 0; mi < 4; ++mi)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni) mma_16816<T>(acc[mi][ni], af[mi], bf[ni]);
    }
    __syncthreads();
  }
  store_mma_tiles<T, kN, false, kernels::kActNone>(args, batch, kK, m0 + warp_m, n0 + warp_n, acc);
}

// The forward (and data gradient) block: 128 rows x 128 columns of C.
template <typename T, int kN, int kK, bool kBias, int kAct, bool kTransB>
__device__ __forceinline__ void gemm_mma_forward(const kernels::GemmArgs& args) {
  constexpr int kBM = kernels::kGemmMmaTileM, kBN = kernels::kGemmMmaTileN, kBK = kernels::kGemmMmaTileK;
  // Padded rows (16-byte multiples); B's tile is [kBK][kBN], or [kBN][kBK] with kTransB.
  constexpr int kAStride = kBK + 8, kBStride = kTransB ? kBK + 8 : kBN + 8;
  alignas(16) __shared__ unsigned short a_smem[2][kBM * kAStride];
  alignas(16) __shared__ unsigned short b_smem[2][(kTransB ? kBN : kBK) * kBStride];

  const GemmTile tile = gemm_tile<kBM, kBN, kN>(args);
  const int batch = tile.batch, rows = tile.rows, m0 = tile.m0, n0 = tile.n0;
  if (m0 >= rows) return;  // the whole block: before any barrier
  const T* a = static_cast<const T*>(args.a) + args.a_batch_stride * batch;
  const T* b = static_cast<const T*>(args.b) + args.b_batch_stride * batch;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int warp_m = (warp / 4) * 64, warp_n = (warp % 4) * 32;

  auto load_stage = [&](int stage, int k0) {
    using E = unsigned short;
    const E* a_bits = reinterpret_cast<const E*>(a);
    const E* b_bits = reinterpret_cast<const E*>(b);
    cp_async_tile<E, kBM, kBK, kAStride, kernels::kGemmThreads>(a_smem[stage], a_bits + static_cast<long>(m0) * kK + k0,
                                                                kK, rows - m0);
    if (kTransB)  // rows n0.. of B [N, K], kBK of K each
      cp_async_tile<E, kBN, kBK, kBStride, kernels::kGemmThreads>(b_smem[stage],
                                                                  b_bits + static_cast<long>(n0) * kK + k0, kK, kBN);
    else
      cp_async_tile<E, kBK, kBN, kBStride, kernels::kGemmThreads>(b_smem[stage],
                                                                  b_bits + static_cast<long>(k0) * kN + n0, kN, kBK);
    cp_async_commit();
  };

  float acc[4][4][4] = {};
  constexpr int kSteps = kK / kBK;
  load_stage(0, 0);
  for (int step = 0; step < kSteps; ++step) {
    const int stage = step & 1;
    cp_async_next_stage<kBK>(step, kSteps, load_stage);
#pragma unroll
    for (int kk = 0; kk < kBK; kk += 16) {
      unsigned af[4][4], bf[4][2];
#pragma unroll
      for (int mi = 0; mi < 4; ++mi) {
        const int row = warp_m + mi * 16 + lane % 16, col = kk + (lane / 16) * 8;
        ldmatrix_x4(af[mi], shared_address(&a_smem[stage][row * kAStride + col]));
      }
#pragma unroll
      for (int ni = 0; ni < 4; ++ni) {
        if (kTransB) {  // lanes 0-7: rows n at k, lanes 8-15 at k + 8
          const int row = warp_n + ni * 8 + lane % 8, col = kk + (lane / 8) % 2 * 8;
          ldmatrix_x2(bf[ni], shared_address(&b_smem[stage][row * kBStride + col]));
        } else {
          const int row = kk + lane % 16, col = warp_n + ni * 8;
          ldmatrix_x2_trans(bf[ni], shared_address(&b_smem[stage][row * kBStride + col]));
        }
      }
#pragma unroll
      for (int mi = 0; mi < 4; ++mi)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni) mma_16816<T>(acc[mi][ni], af[mi], bf[ni]);
    }
    __syncthreads();
  }
  store_mma_tiles<T, kN, kBias, kAct>(args, batch, rows, m0 + warp_m, n0 + warp_n, acc);
}

template <typename T, int kN, int kK, bool kBias, int kAct, bool kTransB, bool kTransA>
__global__ void __launch_bounds__(kernels::kGemmThreads) gemm_mma(kernels::GemmArgs args) {
  constexpr int kBN = kernels::kGemmMmaTileN, kBK = kernels::kGemmMmaTileK;
  static_assert(sizeof(T) == 2, "gemm_mma: float16 or bfloat16 only");
  static_assert(kN % kBN == 0 && kK % kBK == 0, "gemm_mma: N % 128 == 0 and K % 32 == 0");
  static_assert(!kTransA || (!kTransB && !kBias && kAct == kernels::kActNone),
                "gemm_mma: the weight gradient has no B transpose and no epilogue");
  if constexpr (kTransA) {
    gemm_mma_weight_gradient<T, kN, kK>(args);
  } else {
    gemm_mma_forward<T, kN, kK, kBias, kAct, kTransB>(args);
  }
}

}  // namespace cuda
}  // namespace switchyard
