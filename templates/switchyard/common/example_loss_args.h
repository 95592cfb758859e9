// Arguments and constants of the example-loss family (Tutel's ExampleModel loss on the layer's
// output y [B, T, M]: logits are each token's sum over M, a softmax over the tokens, cross
// entropy against token 0, averaged over B), shared by host code and templates.
#pragma once

namespace switchyard {
namespace kernels {

enum ExampleLossOp : int {
  kLossLogits = 0,   // logits[r] = sum over m of y[r][m], r < B*T (double)
  kLossSoftmax = 1,  // per row i: loss[i], then logits[i][j] <- (softmax_j - [j == 0]) / B
  kLossGrad = 2,     // grad[r][m] = logits[r] (the gradient is the same for every m)
};

constexpr int kLossThreads = 256;
constexpr int kLossRowsPerBlock = kLossThreads / 32;  // kLossLogits on CUDA: a warp per token

struct ExampleLossArgs {
  const void* y;   // [B*T, M] in the layer's dtype
  double* logits;  // [B*T]
  double* loss;    // [B]
  void* grad;      // [B*T, M] in the layer's dtype (kLossGrad)
  int batch;
  int tokens;
  int model_dim;
};

}  // namespace kernels
}  // namespace switchyard
