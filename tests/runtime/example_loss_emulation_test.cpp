// The CUDA example-loss family (templates/switchyard/cuda/example_loss.cuh: helloworld's loss on
// the GPU) run on the host through tests/support/cuda_emulation.h, with its family's launches:
// the three ops in turn (a warp's shuffled sums per token, a block's reductions per batch row,
// the gradient fill) give the loss and dL/dy of the double reference.
#include "tests/support/cuda_emulation.h"  // before the templates

#include <gtest/gtest.h>

#include <random>
#include <switchyard/cuda/example_loss.cuh>

#include "jit/kernels/example_loss.h"
#include "tests/reference/example_loss_reference.h"

namespace switchyard {
namespace {

template <int kOp>
void run(const kernels::ExampleLossArgs& args) {
  const KernelSpec spec = kernels::example_loss_spec(DType::kFloat32, kernels::ExampleLossOp(kOp), Target::cuda(90));
  const LaunchConfig launch = kernels::example_loss_launch_config(
      spec, {.batch = args.batch, .tokens = args.tokens, .model_dim = args.model_dim, .parallelism = 132});
  emulation::launch(launch, [&] { cuda::example_loss<float, kOp>(args); });
}

TEST(ExampleLossEmulation, LossAndGradientMatchTheReference) {
  const int batch = 3, tokens = 300, model_dim = 70;  // tokens past one block, M past one warp
  std::mt19937 rng(31);
  std::uniform_real_distribution<float> u(-0.1f, 0.1f);
  std::vector<float> y(static_cast<size_t>(batch) * tokens * model_dim), grad(y.size(), NAN);
  for (float& v : y) v = u(rng);
  std::vector<double> logits(static_cast<size_t>(batch) * tokens, NAN), loss(batch, NAN);
  const kernels::ExampleLossArgs args{y.data(), logits.data(), loss.data(), grad.data(), batch, tokens, model_dim};
  run<kernels::kLossLogits>(args);
  run<kernels::kLossSoftmax>(args);
  run<kernels::kLossGrad>(args);
  std::vector<double> want_grad;
  const double want =
      reference::example_loss(std::vector<double>(y.begin(), y.end()), batch, tokens, model_dim, &want_grad);
  double mean = 0;
  for (double l : loss) mean += l / batch;
  EXPECT_NEAR(mean, want, 1e-9 * (1 + std::abs(want)));
  for (size_t i = 0; i < grad.size(); ++i)
    ASSERT_NEAR(grad[i], want_grad[i], 1e-6 * (1 + std::abs(want_grad[i]))) << "element " << i;
}

}  // namespace
}  // namespace switchyard
