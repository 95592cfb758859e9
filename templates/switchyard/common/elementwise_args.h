// Arguments of the element-wise family (activations, the SwiGLU product and its backward, add,
// scale, the SGD step), its row reduction (bias gradients) and its batched transpose (weights'
// transposed copies), shared by host code and templates.
#pragma once

namespace switchyard {
namespace kernels {

enum ElementwiseOp : int {
  kEwActivate = 0,        // out = act(x), act a GemmActivation (relu, gelu, silu)
  kEwSwiglu = 1,          // out = silu(x) * y
  kEwSwigluBackward = 2,  // dx = z * y * silu'(x) -> out, dy = z * silu(x) -> out2
  kEwAdd = 3,             // out = x + y (out may be x)
  kEwSgd = 4,             // SGD on out (the parameter) with gradient y; out2 the momentum buffer or null
  kEwSumRows = 5,         // out[b][c] = sum over r < rows_b of x[b][r][c]
  kEwScale = 6,           // out = scale * x (out may be x)
  kEwTranspose = 7,       // out[b][c][r] = x[b][r][c] for batch [rows, cols] matrices, r < rows_b; else 0
};

// The CUDA transpose's square tile: 16 x 16 elements a block of 256 threads, read along x's rows
// and written along out's, whole 32-byte sectors both ways for 2- and 4-byte elements.
constexpr int kTransposeTile = 16;

struct ElementwiseArgs {
  const void* x;
  const void* y;
  const void* z;
  void* out;
  void* out2;
  const int* row_counts;  // kEwSumRows, kEwTranspose: rows used per batch (clamped to rows), or null = rows
  long count;             // elements of out (kEwSumRows: batch * cols)
  int rows;               // kEwSumRows, kEwTranspose
  int cols;               // kEwSumRows, kEwTranspose
  int batch;              // kEwSumRows, kEwTranspose
  double scale;           // kEwScale
  double lr;              // kEwSgd: p -= lr * v, v = momentum * v + (g + weight_decay * p)
  double momentum;
  double weight_decay;
  int padded_rows;  // kEwTranspose: out's rows are padded_rows (>= rows) long, zero past rows_b
};

}  // namespace kernels
}  // namespace switchyard
