// Tutel's ExampleModel loss on the CPU (switchyard/common/example_loss_args.h). Sums run in
// double in index order, as the host code it replaces did: the losses are bit-identical.
#pragma once

#include <switchyard/common/example_loss_args.h>
#include <switchyard/cpu/types.hpp>

namespace switchyard {
namespace cpu {

template <typename T, int kOp>
void example_loss(const kernels::ExampleLossArgs& args, unsigned block, unsigned grid) {
  static_assert(kOp >= kernels::kLossLogits && kOp <= kernels::kLossGrad, "example_loss: unknown op");
  const long rows = static_cast<long>(args.batch) * args.tokens, m = args.model_dim;
  if (kOp == kernels::kLossLogits) {
    const T* __restrict y = static_cast<const T*>(args.y);
    for (long r = rows * block / grid; r < rows * (block + 1) / grid; ++r) {
      double sum = 0;
      for (long k = 0; k < m; ++k) sum += static_cast<double>(load(y[r * m + k]));
      args.logits[r] = sum;
    }
  } else if (kOp == kernels::kLossSoftmax) {
    for (long i = long{args.batch} * block / grid; i < long{args.batch} * (block + 1) / grid; ++i) {
      double* logits = args.logits + i * args.tokens;
      double max = logits[0], sum = 0;
      for (int j = 1; j < args.tokens; ++j) max = logits[j] > max ? logits[j] : max;
      for (int j = 0; j < args.tokens; ++j) sum += __builtin_exp(logits[j] - max);
      args.loss[i] = -(logits[0] - max - __builtin_log(sum));
      for (int j = 0; j < args.tokens; ++j)
        logits[j] = (__builtin_exp(logits[j] - max) / sum - (j == 0 ? 1.0 : 0.0)) / args.batch;
    }
  } else {
    T* __restrict grad = static_cast<T*>(args.grad);
    const long count = rows * m;
    for (long e = count * block / grid; e < count * (block + 1) / grid; ++e)
      grad[e] = store_double<T>(args.logits[e / m]);
  }
}

}  // namespace cpu
}  // namespace switchyard
