// The example-loss family: Tutel's ExampleModel loss on the layer's output and its gradient, on
// the output's device (helloworld's per-step loss). Parameters: dtype, op.
#pragma once

#include <switchyard/common/example_loss_args.h>

#include "jit/kernel_family.h"
#include "jit/launch_config.h"

namespace switchyard::kernels {

KernelFamily example_loss_family();
KernelSpec example_loss_spec(DType dtype, ExampleLossOp op, const Target& target);

struct ExampleLossProblem {
  int64_t batch = 1;
  int64_t tokens = 1;
  int64_t model_dim = 1;
  unsigned parallelism = 1;  // the device's: CPU threads, CUDA multiprocessors
};
/// The launch of `spec`: CUDA a warp per token (logits), a block per batch row (softmax), a
/// thread per element (gradient); the CPU splits the same ranges over its threads.
LaunchConfig example_loss_launch_config(const KernelSpec& spec, const ExampleLossProblem& problem);

}  // namespace switchyard::kernels
