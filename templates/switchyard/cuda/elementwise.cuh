// The element-wise family on CUDA (see common/elementwise_args.h): a thread per output
// element, math in fp32 whatever the storage type; the transpose a block per square tile.
#pragma once

#include <switchyard/common/elementwise_args.h>
#include <switchyard/cuda/gemm_epilogue.cuh>

namespace switchyard {
namespace cuda {

constexpr int kElementwiseThreads = 256;
static_assert(kernels::kTransposeTile * kernels::kTransposeTile == kElementwiseThreads,
              "elementwise: a transpose tile is a thread an element");

__device__ __forceinline__ float silu_of(float v) {
  return v / (1.0f + __expf(-v));
}

// Block t's tile of a batched transpose (blocks batch-major, then column tiles of x, then row
// tiles of the padded output): read along x's rows into shared memory, written along out's rows,
// zeros past the batch's used rows.
template <typename T>
__device__ __forceinline__ void transpose_tile(const kernels::ElementwiseArgs& args) {
  constexpr int kTile = kernels::kTransposeTile;
  __shared__ T tile[kTile][kTile + 1];  // + 1: the column reads fall in distinct banks
  const long row_tiles = (args.padded_rows + kTile - 1) / kTile, col_tiles = (args.cols + kTile - 1) / kTile;
  const long b = blockIdx.x / (row_tiles * col_tiles), in_batch = blockIdx.x % (row_tiles * col_tiles);
  const int c0 = static_cast<int>(in_batch / row_tiles) * kTile, r0 = static_cast<int>(in_batch % row_tiles) * kTile;
  const int tx = threadIdx.x % kTile, ty = threadIdx.x / kTile;
  const int used = kernels::rows_used(args.row_counts, static_cast<int>(b), args.rows);
  const T* x = static_cast<const T*>(args.x) + b * args.rows * args.cols;
  T* out = static_cast<T*>(args.out) + b * args.cols * static_cast<long>(args.padded_rows);
  const int r = r0 + ty, c = c0 + tx;
  tile[ty][tx] = r < used && c < args.cols ? x[static_cast<long>(r) * args.cols + c] : from_float<T>(0.0f);
  __syncthreads();
  const int out_c = c0 + ty, out_r = r0 + tx;
  if (out_c < args.cols && out_r < args.padded_rows)
    out[static_cast<long>(out_c) * args.padded_rows + out_r] = tile[tx][ty];
}

template <typename T, int kOp, int kAct>
__global__ void __launch_bounds__(kElementwiseThreads) elementwise(kernels::ElementwiseArgs args) {
  static_assert(kOp >= kernels::kEwActivate && kOp <= kernels::kEwTranspose, "elementwise: unknown op");
  static_assert(kOp != kernels::kEwActivate || (kAct >= kernels::kActRelu && kAct <= kernels::kActSilu),
                "elementwise: activate takes relu, gelu or silu");
  if (kOp == kernels::kEwTranspose) {
    transpose_tile<T>(args);
    return;
  }
  const long i = static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= args.count) return;
  const T* x = static_cast<const T*>(args.x);
  const T* y = static_cast<const T*>(args.y);
  const T* z = static_cast<const T*>(args.z);
  T* out = static_cast<T*>(args.out);
  T* out2 = static_cast<T*>(args.out2);
  if (kOp == kernels::kEwSumRows) {  // one thread per (batch, column): coalesced along columns
    const long b = i / args.cols, c = i % args.cols;
    const int rows = (args.row_counts && args.row_counts[b] < args.rows ? args.row_counts[b] : args.rows);
    float sum = 0.0f;
    for (int r = 0; r < rows; ++r) sum += to_float(x[(b * args.rows + r) * args.cols + c]);
    out[i] = from_float<T>(sum);
  }
  if (kOp == kernels::kEwActivate) out[i] = from_float<T>(gemm_activate<kAct>(to_float(x[i]), 0.0f));
  if (kOp == kernels::kEwSwiglu) out[i] = from_float<T>(silu_of(to_float(x[i])) * to_float(y[i]));
  if (kOp == kernels::kEwSwigluBackward) {
    const float gate = to_float(x[i]), grad = to_float(z[i]);
    out2[i] = from_float<T>(grad * silu_of(gate));
    out[i] = from_float<T>(gemm_activate<kernels::kActSiluGrad>(grad * to_float(y[i]), gate));
  }
  if (kOp == kernels::kEwAdd) out[i] = from_float<T>(to_float(x[i]) + to_float(y[i]));
  // NOTE: the exact product of the float scale and x (at most 48 bits: exact in double), rounded
  // once to T, as the host and the CPU template (float product, rounded once) compute it.
  if (kOp == kernels::kEwScale)
    out[i] = from_double<T>(static_cast<double>(static_cast<float>(args.scale)) * to_float(x[i]));
  if (kOp == kernels::kEwSgd) {
    const float p = to_float(out[i]);
    float step = to_float(y[i]) + static_cast<float>(args.weight_decay) * p;
    if (out2) {
      step = static_cast<float>(args.momentum) * to_float(out2[i]) + step;
      out2[i] = from_float<T>(step);
    }
    out[i] = from_float<T>(p - static_cast<float>(args.lr) * step);
  }
}

}  // namespace cuda
}  // namespace switchyard
