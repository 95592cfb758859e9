// Batched GEMM on CUDA cores, for any storage type and layout (the fallback of the tensor-core
// kernels, and float32 without TF32), fp32 accumulation. A block of 256 threads computes a
// kTile x kTile block of C (128, or 64 where N or K is small: the family's rule in jit/kernels/gemm.cpp);
// each thread kQuads x kQuads blocks of 4 x 4 spaced 64 apart, so that a warp's shared-memory
// reads are 16-byte vectors without bank conflicts. The reduction runs in steps of 8 through two
// shared-memory stages: the next step's global loads are issued before this step's FMAs and
// stored to the other stage after them, one barrier a step.
#pragma once

#include <switchyard/common/gemm_args.h>
#include <switchyard/cuda/gemm_epilogue.cuh>

namespace switchyard {
namespace cuda {

constexpr int kSimtStep = 8;
// Rows of a stage are kTile + 4 floats: still 16-byte aligned, and the transposing stores of the
// operands read along the reduction land in 32 different banks.
constexpr int kSimtPad = 4;

template <int kTile>
struct alignas(16) SimtStage {
  float a[kSimtStep][kTile + kSimtPad];  // [reduction][row of C]
  float b[kSimtStep][kTile + kSimtPad];  // [reduction][column of C]
};

// One operand's slice of a step, element (s, j) (s along the reduction, j along the tile) read
// from src[j * ld + s] when kAlongReduce (the reduction is contiguous: A [rows, K], B [N, K])
// or src[s * ld + j] (B [K, N], and both operands of the weight gradient). Elements with
// j >= j_limit or s >= s_limit read as zero. Each thread carries kLoads consecutive elements of
// one j (along the reduction) or one s (along the tile) from the global load to the
// shared-memory store, and walks its own pointer from step to step (few registers: the 8 x 8
// accumulators need most of them).
template <typename T, int kTile, bool kAlongReduce>
struct SimtOperand {
  static constexpr int kLoads = kTile * kSimtStep / kernels::kGemmThreads;
  static constexpr int kThreadsPerLine = kAlongReduce ? kSimtStep / kLoads : kTile / kLoads;
  static_assert(kLoads >= 1 && kSimtStep % kLoads == 0, "SimtOperand: the tile does not split over the threads");
  const T* next;     // this thread's first element of the next step to load
  long step_stride;  // elements from one step to the next
  unsigned valid_j;  // bit q: element q's j is inside the limit
  int s_first;       // this thread's first s within a step
  int s_limit;
  float v[kLoads] = {};

  __device__ __forceinline__ SimtOperand(const T* src, long ld, int j_limit, int s_limit_) : s_limit(s_limit_) {
    const int line = threadIdx.x / kThreadsPerLine, part = (threadIdx.x % kThreadsPerLine) * kLoads;
    const int j0 = kAlongReduce ? line : part;
    s_first = kAlongReduce ? part : line;
    next = src + (kAlongReduce ? j0 * ld + s_first : s_first * ld + j0);
    step_stride = kAlongReduce ? kSimtStep : kSimtStep * ld;
    valid_j = 0;
#pragma unroll
    for (int q = 0; q < kLoads; ++q) valid_j |= static_cast<unsigned>(j0 + (kAlongReduce ? 0 : q) < j_limit) << q;
  }

  // Loads the step that starts at s = step_start (steps are loaded in order, each once): float32's
  // four elements in one 16-byte load where all are inside and the address is aligned (rows that
  // are multiples of four), else one at a time. (16-bit types' 8-byte loads spilled the SwiGLU
  // epilogue's bfloat16 kernel at 128 registers.)
  __device__ __forceinline__ void load(int step_start) {
    constexpr int kBytes = static_cast<int>(sizeof(T)) * kLoads;
    const int s0 = step_start + s_first;
    const bool inside = valid_j == (1u << kLoads) - 1 && s0 + (kAlongReduce ? kLoads - 1 : 0) < s_limit;
    if (kBytes == 16 && inside && reinterpret_cast<unsigned long>(next) % kBytes == 0) {
      const Pack<T, kLoads> pack = *reinterpret_cast<const Pack<T, kLoads>*>(next);
#pragma unroll
      for (int q = 0; q < kLoads; ++q) v[q] = to_float(pack.v[q]);
    } else {
#pragma unroll
      for (int q = 0; q < kLoads; ++q) {
        const int s = s0 + (kAlongReduce ? q : 0);
        v[q] = (valid_j >> q & 1u) && s < s_limit ? to_float(next[q]) : 0.0f;
      }
    }
    next += step_stride;
  }

  __device__ __forceinline__ void store(float (&slice)[kSimtStep][kTile + kSimtPad]) const {
    const int line = threadIdx.x / kThreadsPerLine, part = (threadIdx.x % kThreadsPerLine) * kLoads;
#pragma unroll
    for (int q = 0; q < kLoads; ++q) {
      if (kAlongReduce)
        slice[part + q][line] = v[q];
      else
        slice[line][part + q] = v[q];
    }
  }
};

// Accumulates one stage into this thread's kQuads x kQuads blocks of 4 x 4: rows ty * 4 + 64 * qa,
// columns tx * 4 + 64 * qb.
template <int kTile>
__device__ __forceinline__ void simt_step(const SimtStage<kTile>& stage, float (&acc)[kTile / 16][kTile / 16]) {
  constexpr int kQuads = kTile / 64;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
#pragma unroll
  for (int s = 0; s < kSimtStep; ++s) {
    float av[kQuads * 4], bv[kQuads * 4];
#pragma unroll
    for (int q = 0; q < kQuads; ++q) {
      const Pack<float, 4> a4 = *reinterpret_cast<const Pack<float, 4>*>(&stage.a[s][q * 64 + ty * 4]);
      const Pack<float, 4> b4 = *reinterpret_cast<const Pack<float, 4>*>(&stage.b[s][q * 64 + tx * 4]);
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        av[q * 4 + e] = a4.v[e];
        bv[q * 4 + e] = b4.v[e];
      }
    }
#pragma unroll
    for (int i = 0; i < kQuads * 4; ++i)
#pragma unroll
      for (int j = 0; j < kQuads * 4; ++j) acc[i][j] += av[i] * bv[j];
  }
}

// The row (or column) of C that accumulator index i of this thread holds, relative to the tile.
__device__ __forceinline__ int simt_offset(int i, int lane16) {
  return (i / 4) * 64 + lane16 * 4 + i % 4;
}

// Runs the reduction of length `reduce` over both operands into acc (zeros when reduce is 0).
// Every thread of the block calls it: the barriers are the block's.
template <int kTile, typename OperandA, typename OperandB>
__device__ __forceinline__ void simt_reduce(OperandA& a, OperandB& b, int reduce, SimtStage<kTile> (&stages)[2],
                                            float (&acc)[kTile / 16][kTile / 16]) {
  a.load(0);
  b.load(0);
  a.store(stages[0].a);
  b.store(stages[0].b);
  __syncthreads();
  int current = 0;
  for (int s0 = 0; s0 < reduce; s0 += kSimtStep) {
    const bool more = s0 + kSimtStep < reduce;
    if (more) {  // in flight while this step's FMAs run
      a.load(s0 + kSimtStep);
      b.load(s0 + kSimtStep);
    }
    simt_step<kTile>(stages[current], acc);
    if (more) {  // the other stage: every thread left it at the last barrier
      a.store(stages[current ^ 1].a);
      b.store(stages[current ^ 1].b);
    }
    __syncthreads();
    current ^= 1;
  }
}

// The weight-gradient form: C [K, N] = A^T B, the reduction over the run-time rows
// (weight_gradient_tile's blocks).
template <typename T, int kN, int kK, int kTile>
__device__ __forceinline__ void gemm_simt_tn(const kernels::GemmArgs& args, SimtStage<kTile> (&stages)[2]) {
  const WeightGradientTile tile = weight_gradient_tile<kTile, kTile, kN, kK>(args);
  const int batch = tile.batch, reduce = tile.reduce, k0 = tile.m0, n0 = tile.n0;
  SimtOperand<T, kTile, false> a(static_cast<const T*>(args.a) + args.a_batch_stride * batch + k0, kK, kK - k0, reduce);
  SimtOperand<T, kTile, false> b(static_cast<const T*>(args.b) + args.b_batch_stride * batch + n0, kN, kN - n0, reduce);
  float acc[kTile / 16][kTile / 16] = {};
  simt_reduce<kTile>(a, b, reduce, stages, acc);
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  T* c = static_cast<T*>(args.c) + args.c_batch_stride * batch;
#pragma unroll
  for (int i = 0; i < kTile / 16; ++i)
#pragma unroll
    for (int j = 0; j < kTile / 16; ++j) {
      const int m = k0 + simt_offset(i, ty), n = n0 + simt_offset(j, tx);
      if (m < kK && n < kN) c[static_cast<long>(m) * kN + n] = from_float<T>(acc[i][j]);
    }
}

// Two blocks a multiprocessor (at most 128 registers a thread): one block's barrier leaves the
// other's warps to hide the latencies.
template <typename T, int kN, int kK, bool kTransA, bool kTransB, bool kBias, int kAct, int kTile>
__global__ void __launch_bounds__(kernels::kGemmThreads, 2) gemm_simt(kernels::GemmArgs args) {
  static_assert(kN > 0 && kK > 0, "gemm_simt: N and K must be positive");
  static_assert(kTile == 64 || kTile == 128, "gemm_simt: tiles of 64 or 128");
  static_assert(!kTransA || (!kTransB && !kBias && kAct == kernels::kActNone),
                "gemm_simt: the trans_a (weight gradient) form has no B transpose, bias or epilogue");
  __shared__ SimtStage<kTile> stages[2];
  if (kTransA) {
    gemm_simt_tn<T, kN, kK, kTile>(args, stages);
    return;
  }
  const GemmTile tile = gemm_tile<kTile, kTile, kN>(args);
  const int batch = tile.batch, rows = tile.rows, m0 = tile.m0, n0 = tile.n0;
  if (m0 >= rows) return;  // the whole block: before any barrier
  const T* a_batch = static_cast<const T*>(args.a) + args.a_batch_stride * batch;
  const T* b_batch = static_cast<const T*>(args.b) + args.b_batch_stride * batch;
  SimtOperand<T, kTile, true> a(a_batch + static_cast<long>(m0) * kK, kK, rows - m0, kK);
  // B [K, N] is contiguous along the tile; with trans_b, B [N, K] along the reduction.
  SimtOperand<T, kTile, kTransB> b(b_batch + (kTransB ? static_cast<long>(n0) * kK : n0), kTransB ? kK : kN, kN - n0,
                                   kK);
  float acc[kTile / 16][kTile / 16] = {};
  simt_reduce<kTile>(a, b, kK, stages, acc);
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
#pragma unroll
  for (int i = 0; i < kTile / 16; ++i) {
#pragma unroll
    for (int j = 0; j < kTile / 16; ++j) {
      const int m = m0 + simt_offset(i, ty), n = n0 + simt_offset(j, tx);
      if (m < rows && n < kN) gemm_store<T, kN, kBias, kAct>(args, batch, m, n, acc[i][j]);
    }
  }
}

}  // namespace cuda
}  // namespace switchyard
