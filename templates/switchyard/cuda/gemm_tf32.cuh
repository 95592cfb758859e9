// Batched float32 GEMM on tensor cores in TF32 (sm_80+), used when a layer allows TF32 (Tutel's
// --use_tensorcore): 128x128x16 block tiles in 8 warps of 64x32, mma.sync m16n8k8 with fp32
// accumulators, fragments read from shared memory and rounded with cvt.rna.tf32, and a
// two-stage cp.async pipeline. B is [K, N], or [N, K] with kTransB (the data gradient's W^T).
// Requires N % 128 == 0 and K % 16 == 0. With kTransA, the weight gradient C [K, N] = A^T B over
// the run-time rows (each batch's count when grouped), K % 128 == 0.
#pragma once

#include <switchyard/common/gemm_args.h>
#include <switchyard/cuda/gemm_epilogue.cuh>
#include <switchyard/cuda/mma.cuh>

namespace switchyard {
namespace cuda {

// On the host these two are tests/support/mma_emulation.h's.
#ifndef SY_CUDA_EMULATION
__device__ __forceinline__ unsigned to_tf32(float value) {
  unsigned bits;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(bits) : "f"(value));
  return bits;
}

__device__ __forceinline__ void mma_1688_tf32(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
#endif  // SY_CUDA_EMULATION

// The weight gradient's block: output rows m0.. of K and columns n0.. of N for one batch (blocks
// batch-major, then row tiles of K, then column tiles, as gemm_launch_config counts them). Both
// tiles are [16 reduction rows][128 columns]; rows past the count are zero-filled by the copies.
template <int kN, int kK>
__device__ __forceinline__ void gemm_tf32_weight_gradient(const kernels::GemmArgs& args) {
  constexpr int kBM = kernels::kGemmMmaTileM, kBN = kernels::kGemmMmaTileN, kBK = 16;
  static_assert(kK % kBM == 0, "gemm_tf32: the weight gradient's K in whole 128-row tiles");
  constexpr int kStride = kBM + 8;  // 16-byte multiples; the fragments' reads fall in distinct banks
  alignas(16) __shared__ float a_smem[2][kBK * kStride];
  alignas(16) __shared__ float b_smem[2][kBK * kStride];
  const WeightGradientTile tile = weight_gradient_tile<kBM, kBN, kN, kK>(args);
  const int batch = tile.batch, reduce = tile.reduce, m0 = tile.m0, n0 = tile.n0;
  const float* a = static_cast<const float*>(args.a) + args.a_batch_stride * batch + m0;
  const float* b = static_cast<const float*>(args.b) + args.b_batch_stride * batch + n0;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int warp_m = (warp / 4) * 64, warp_n = (warp % 4) * 32;
  const int group = lane / 4, thread_in_group = lane % 4;
  auto load_stage = [&](int stage, int r0) {  // rows past the count: zeros (NaN there must not count)
    cp_async_tile<float, kBK, kBM, kStride, kernels::kGemmThreads>(a_smem[stage], a + static_cast<long>(r0) * kK, kK,
                                                                   reduce - r0);
    cp_async_tile<float, kBK, kBN, kStride, kernels::kGemmThreads>(b_smem[stage], b + static_cast<long>(r0) * kN, kN,
                                                                   reduce - r0);
    cp_async_commit();
  };
  float acc[4][4][4] = {};
  const int steps = (reduce + kBK - 1) / kBK;
  if (steps > 0) load_stage(0, 0);
  for (int step = 0; step < steps; ++step) {
    const int stage = step & 1;
    cp_async_next_stage<kBK>(step, steps, load_stage);
    const float* as = a_smem[stage];
    const float* bs = b_smem[stage];
#pragma unroll
    for (int kk = 0; kk < kBK; kk += 8) {
      unsigned af[4][4], bf[4][2];
#pragma unroll
      for (int mi = 0; mi < 4; ++mi) {  // A^T(row, k) = A(k, row): the tile's row k, column row
        const int row = warp_m + mi * 16 + group, k = kk + thread_in_group;
        af[mi][0] = to_tf32(as[k * kStride + row]);
        af[mi][1] = to_tf32(as[k * kStride + row + 8]);
        af[mi][2] = to_tf32(as[(k + 4) * kStride + row]);
        af[mi][3] = to_tf32(as[(k + 4) * kStride + row + 8]);
      }
#pragma unroll
      for (int ni = 0; ni < 4; ++ni) {
        const int col = warp_n + ni * 8 + group;
        bf[ni][0] = to_tf32(bs[(kk + thread_in_group) * kStride + col]);
        bf[ni][1] = to_tf32(bs[(kk + thread_in_group + 4) * kStride + col]);
      }
#pragma unroll
      for (int mi = 0; mi < 4; ++mi)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni) mma_1688_tf32(acc[mi][ni], af[mi], bf[ni]);
    }
    __syncthreads();
  }
  store_mma_tiles<float, kN, false, kernels::kActNone>(args, batch, kK, m0 + warp_m, n0 + warp_n, acc);
}

// The forward (and data gradient) block: 128 rows x 128 columns of C.
template <int kN, int kK, bool kBias, int kAct, bool kTransB>
__device__ __forceinline__ void gemm_tf32_forward(const kernels::GemmArgs& args) {
  constexpr int kBM = kernels::kGemmMmaTileM, kBN = kernels::kGemmMmaTileN, kBK = 16;
  // Padded rows (16-byte multiples); B's tile is [kBK][kBN], or [kBN][kBK] with kTransB.
  constexpr int kAStride = kBK + 4, kBStride = kTransB ? kBK + 4 : kBN + 4;
  alignas(16) __shared__ float a_smem[2][kBM * kAStride];
  alignas(16) __shared__ float b_smem[2][(kTransB ? kBN : kBK) * kBStride];

  const GemmTile tile = gemm_tile<kBM, kBN, kN>(args);
  const int batch = tile.batch, rows = tile.rows, m0 = tile.m0, n0 = tile.n0;
  if (m0 >= rows) return;  // the whole block: before any barrier
  const float* a = static_cast<const float*>(args.a) + args.a_batch_stride * batch;
  const float* b = static_cast<const float*>(args.b) + args.b_batch_stride * batch;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int warp_m = (warp / 4) * 64, warp_n = (warp % 4) * 32;
  const int group = lane / 4, thread_in_group = lane % 4;

  auto load_stage = [&](int stage, int k0) {
    cp_async_tile<float, kBM, kBK, kAStride, kernels::kGemmThreads>(a_smem[stage], a + static_cast<long>(m0) * kK + k0,
                                                                    kK, rows - m0);
    if (kTransB)  // rows n0.. of B [N, K], kBK of K each
      cp_async_tile<float, kBN, kBK, kBStride, kernels::kGemmThreads>(b_smem[stage],
                                                                      b + static_cast<long>(n0) * kK + k0, kK, kBN);
    else
      cp_async_tile<float, kBK, kBN, kBStride, kernels::kGemmThreads>(b_smem[stage],
                                                                      b + static_cast<long>(k0) * kN + n0, kN, kBK);
    cp_async_commit();
  };

  float acc[4][4][4] = {};
  constexpr int kSteps = kK / kBK;
  load_stage(0, 0);
  for (int step = 0; step < kSteps; ++step) {
    const int stage = step & 1;
    cp_async_next_stage<kBK>(step, kSteps, load_stage);
    const float* as = a_smem[stage];
    const float* bs = b_smem[stage];
#pragma unroll
    for (int kk = 0; kk < kBK; kk += 8) {
      unsigned af[4][4], bf[4][2];
#pragma unroll
      for (int mi = 0; mi < 4; ++mi) {
        const int row = warp_m + mi * 16 + group;
        af[mi][0] = to_tf32(as[row * kAStride + kk + thread_in_group]);
        af[mi][1] = to_tf32(as[(row + 8) * kAStride + kk + thread_in_group]);
        af[mi][2] = to_tf32(as[row * kAStride + kk + thread_in_group + 4]);
        af[mi][3] = to_tf32(as[(row + 8) * kAStride + kk + thread_in_group + 4]);
      }
#pragma unroll
      for (int ni = 0; ni < 4; ++ni) {
        const int col = warp_n + ni * 8 + group;
        // B(k, col): [k][n] in shared memory, or [n][k] with kTransB
        auto b_at = [&](int k) { return kTransB ? bs[col * kBStride + k] : bs[k * kBStride + col]; };
        bf[ni][0] = to_tf32(b_at(kk + thread_in_group));
        bf[ni][1] = to_tf32(b_at(kk + thread_in_group + 4));
      }
#pragma unroll
      for (int mi = 0; mi < 4; ++mi)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni) mma_1688_tf32(acc[mi][ni], af[mi], bf[ni]);
    }
    __syncthreads();
  }
  store_mma_tiles<float, kN, kBias, kAct>(args, batch, rows, m0 + warp_m, n0 + warp_n, acc);
}

template <typename T, int kN, int kK, bool kBias, int kAct, bool kTransB, bool kTransA>
__global__ void __launch_bounds__(kernels::kGemmThreads) gemm_tf32(kernels::GemmArgs args) {
  static_assert(sizeof(T) == 4, "gemm_tf32: float32 data only");
  static_assert(kN % kernels::kGemmMmaTileN == 0 && kK % 16 == 0, "gemm_tf32: N % 128 == 0 and K % 16 == 0");
  static_assert(!kTransA || (!kTransB && !kBias && kAct == kernels::kActNone),
                "gemm_tf32: the weight gradient has no B transpose and no epilogue");
  if constexpr (kTransA) {
    gemm_tf32_weight_gradient<kN, kK>(args);
  } else {
    gemm_tf32_forward<kN, kK, kBias, kAct, kTransB>(args);
  }
}

}  // namespace cuda
}  // namespace switchyard
