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
  kEwTranspose = 7,       // out[b][c][r] = x[b][r][c] for batch [rows, cols] matrices
};

struct ElementwiseArgs {
  const void* x;
  const void* y;
  const void* z;
  void* out;
  void* out2;
  const int* row_counts;  // kEwSumRows: rows used per batch, or null = rows
  long count;             // elements of out (kEwSumRows: batch * cols)
  int rows;               // kEwSumRows, kEwTranspose
  int cols;               // kEwSumRows, kEwTranspose
  int batch;              // kEwSumRows, kEwTranspose
  double scale;           // kEwScale
  double lr;              // kEwSgd: p -= lr * v, v = momentum * v + (g + weight_decay * p)
  double momentum;
  double weight_decay;
};

}  // namespace kernels
}  // namespace switchyard
