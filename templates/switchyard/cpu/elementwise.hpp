// The element-wise family on the CPU (see common/elementwise_args.h). One call handles one
// block of the grid: a contiguous range of the output.
#pragma once

#include <switchyard/common/elementwise_args.h>
#include <switchyard/common/gemm_args.h>
#include <switchyard/cpu/math.hpp>
#include <switchyard/cpu/types.hpp>

namespace switchyard {
namespace cpu {

template <typename T, int kAct>
inline T activate(T x) {
  if (kAct == kernels::kActRelu) return relu(x);
  if (kAct == kernels::kActGelu) return gelu(x);
  if (kAct == kernels::kActSilu) return silu(x);
  return x;
}

// Column sums of each batch's [rows, cols] block, for outputs [begin, end) of [batch, cols],
// kept in the compute type across the rows, kColumns columns at a time.
template <typename T>
void sum_rows(const kernels::ElementwiseArgs& args, long begin, long end) {
  constexpr long kColumns = 256;
  using C = compute_t<T>;
  const T* x = static_cast<const T*>(args.x);
  T* out = static_cast<T*>(args.out);
  while (begin < end) {
    const long b = begin / args.cols, c0 = begin % args.cols;
    const long c1 = end - b * args.cols < args.cols ? end - b * args.cols : args.cols;
    const int rows = (args.row_counts && args.row_counts[b] < args.rows ? args.row_counts[b] : args.rows);
    for (long cc = c0; cc < c1; cc += kColumns) {
      const long width = c1 - cc < kColumns ? c1 - cc : kColumns;
      C sum[kColumns] = {};
      for (int r = 0; r < rows; ++r) {
        const T* src = x + (b * args.rows + r) * args.cols + cc;
        for (long c = 0; c < width; ++c) sum[c] += load(src[c]);
      }
      for (long c = 0; c < width; ++c) out[b * args.cols + cc + c] = store<T>(sum[c]);
    }
    begin = b * args.cols + c1;
  }
}

// Rows [begin, end) of the [batch * cols, padded_rows] output of a batched transpose, 16 output
// rows at a time so that each input row is read contiguously; each row's entries past its batch's
// used rows are zero.
template <typename T>
void transpose_rows(const kernels::ElementwiseArgs& args, long begin, long end) {
  constexpr long kRows = 16;
  const T* x = static_cast<const T*>(args.x);
  T* out = static_cast<T*>(args.out);
  const long padded = args.padded_rows;
  for (long row = begin; row < end;) {
    const long b = row / args.cols, c0 = row % args.cols;
    long c1 = c0 + kRows;
    if (c1 > args.cols) c1 = args.cols;
    if (c1 - c0 > end - row) c1 = c0 + (end - row);
    const long used = kernels::rows_used(args.row_counts, static_cast<int>(b), args.rows);
    const T* src = x + b * args.rows * args.cols;
    T* dst = out + b * padded * args.cols;
    for (long r = 0; r < used; ++r)
      for (long c = c0; c < c1; ++c) dst[c * padded + r] = src[r * args.cols + c];
    for (long c = c0; c < c1; ++c)
      for (long r = used; r < padded; ++r) dst[c * padded + r] = store<T>(0);
    row += c1 - c0;
  }
}

template <typename T, int kOp, int kAct>
void elementwise(const kernels::ElementwiseArgs& args, unsigned block, unsigned grid) {
  static_assert(kOp >= kernels::kEwActivate && kOp <= kernels::kEwTranspose, "elementwise: unknown op");
  static_assert(kOp != kernels::kEwActivate || (kAct >= kernels::kActRelu && kAct <= kernels::kActSilu),
                "elementwise: activate takes relu, gelu or silu");
  const long begin = args.count * block / grid, end = args.count * (block + 1) / grid;
  if (kOp == kernels::kEwSumRows) {
    sum_rows<T>(args, begin, end);
    return;
  }
  if (kOp == kernels::kEwTranspose) {  // blocks split the output rows
    const long rows = static_cast<long>(args.batch) * args.cols;
    transpose_rows<T>(args, rows * block / grid, rows * (block + 1) / grid);
    return;
  }
  const T* x = static_cast<const T*>(args.x);
  const T* y = static_cast<const T*>(args.y);
  const T* z = static_cast<const T*>(args.z);
  T* out = static_cast<T*>(args.out);
  T* out2 = static_cast<T*>(args.out2);
  using C = compute_t<T>;  // float for 16-bit storage: one rounding per stored value
  for (long i = begin; i < end; ++i) {
    if (kOp == kernels::kEwActivate) out[i] = store<T>(activate<C, kAct>(load(x[i])));
    if (kOp == kernels::kEwSwiglu) out[i] = store<T>(silu(load(x[i])) * load(y[i]));
    if (kOp == kernels::kEwSwigluBackward) {
      const C gate = load(x[i]), grad = load(z[i]);
      out2[i] = store<T>(grad * silu(gate));
      out[i] = store<T>(grad * load(y[i]) * silu_grad(gate));
    }
    if (kOp == kernels::kEwAdd) out[i] = store<T>(load(x[i]) + load(y[i]));
    // NOTE: 16-bit: the exact product of the float scale and x, rounded once (as on CUDA).
    if (kOp == kernels::kEwScale) {
      if constexpr (kIsNarrow<T>)
        out[i] = store_double<T>(static_cast<double>(static_cast<float>(args.scale)) * load(x[i]));
      else
        out[i] = static_cast<T>(args.scale) * x[i];
    }
    if (kOp == kernels::kEwSgd) {
      const C p = load(out[i]);
      C step = load(y[i]) + static_cast<C>(args.weight_decay) * p;
      if (out2) {
        step = static_cast<C>(args.momentum) * load(out2[i]) + step;
        out2[i] = store<T>(step);
      }
      out[i] = store<T>(p - static_cast<C>(args.lr) * step);
    }
  }
}

}  // namespace cpu
}  // namespace switchyard
