// Tutel's ExampleModel loss (helloworld's) computed on the device that holds the layer's output:
// logits are each token's sum over the model dimension, a softmax over the tokens of a sample,
// cross entropy against token 0, averaged over the samples. Only the per-sample losses come back
// to the host; the gradient stays on the device.
#pragma once

#include <vector>

#include "runtime/context.h"
#include "runtime/tensor.h"

namespace switchyard {

class ExampleLoss {
 public:
  /// Buffers for outputs of `batch` x `tokens` x `model_dim` on `device`, allocated once.
  ExampleLoss(Context& context, Device& device, int64_t batch, int64_t tokens, int64_t model_dim);

  /// The loss of y [batch * tokens, model_dim] (contiguous, on the device); when `grad` is given
  /// (same shape and dtype), dL/dy is written into it. Waits for the device (one copy of
  /// `batch` doubles). Throws UserError naming a tensor of the wrong shape, dtype or device.
  double operator()(const Tensor& y, const Tensor* grad);

 private:
  void launch(DType dtype, int op, const Tensor& y, const Tensor* grad);

  Context& context_;
  Device& device_;
  int64_t batch_, tokens_, model_dim_;
  Buffer logits_;  // [batch * tokens] doubles: the logits, then dL/dlogits
  Buffer losses_;  // [batch] doubles
  std::vector<double> host_losses_;
};

}  // namespace switchyard
