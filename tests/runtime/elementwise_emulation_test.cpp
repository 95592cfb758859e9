// The CUDA element-wise family (templates/switchyard/cuda/elementwise.cuh) run on the host through
// tests/support/cuda_emulation.h, with its family's launch, against each op's formula in double
// (common/elementwise_args.h): the activations, SwiGLU and its backward, add, scale, SGD with and
// without momentum and weight decay, the bias gradient's row sums over grouped rows, and the
// batched transpose (padded, grouped), in float32 (the math is float whatever the storage type).
#include "tests/support/cuda_emulation.h"  // before the templates

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <switchyard/cuda/elementwise.cuh>

#include "jit/kernels/elementwise.h"
#include "tests/reference/backward_reference.h"
#include "tests/support/emulated_transpose.h"
#include "tests/support/random_values.h"

namespace switchyard {
namespace {

using kernels::ElementwiseArgs;
using testing::uniform_values;

double silu(double v) {
  return v / (1 + std::exp(-v));
}

// Runs op kOp (activation kAct) over `count` outputs with the family's launch.
template <int kOp, int kAct = kernels::kActNone>
void run(const ElementwiseArgs& args) {
  const KernelSpec spec = kernels::elementwise_spec(DType::kFloat32, kernels::ElementwiseOp(kOp),
                                                    kernels::GemmActivation(kAct), Target::cuda(90));
  const LaunchConfig launch = kernels::elementwise_launch_config(spec, args.count, args.count, 132);
  emulation::launch(launch, [&] { cuda::elementwise<float, kOp, kAct>(args); });
}

void expect_near(const std::vector<float>& got, const std::function<double(size_t)>& want, const char* what) {
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want(i), 1e-5 * (1 + std::abs(want(i)))) << what << " element " << i;
}

TEST(ElementwiseEmulation, PointwiseOpsMatchTheirFormulas) {
  std::mt19937 rng(19);
  const long n = 1000;  // not a multiple of the 256-thread blocks
  const std::vector<float> x = uniform_values<float>(rng, n, -2.0f, 2.0f),
                           y = uniform_values<float>(rng, n, -2.0f, 2.0f),
                           z = uniform_values<float>(rng, n, -2.0f, 2.0f);
  std::vector<float> out(n), out2(n);
  ElementwiseArgs args{x.data(), y.data(), z.data(), out.data(), out2.data(), nullptr, n, 0, 0, 0, 0.75, 0, 0, 0, 0};
  run<kernels::kEwActivate, kernels::kActRelu>(args);
  expect_near(
      out, [&](size_t i) { return reference::activate(reference::Act::kRelu, x[i]); }, "relu");
  run<kernels::kEwActivate, kernels::kActGelu>(args);
  expect_near(
      out, [&](size_t i) { return reference::activate(reference::Act::kGelu, x[i]); }, "gelu");
  run<kernels::kEwActivate, kernels::kActSilu>(args);
  expect_near(
      out, [&](size_t i) { return silu(x[i]); }, "silu");
  run<kernels::kEwSwiglu>(args);
  expect_near(
      out, [&](size_t i) { return silu(x[i]) * y[i]; }, "swiglu");
  run<kernels::kEwSwigluBackward>(args);  // d/dx of silu(x) y, times z; d/dy, times z
  expect_near(
      out, [&](size_t i) { return z[i] * y[i] * reference::activate_grad(reference::Act::kSilu, x[i]); }, "swiglu dx");
  expect_near(
      out2, [&](size_t i) { return z[i] * silu(x[i]); }, "swiglu dy");
  run<kernels::kEwAdd>(args);
  expect_near(
      out, [&](size_t i) { return double(x[i]) + y[i]; }, "add");
  run<kernels::kEwScale>(args);
  expect_near(
      out, [&](size_t i) { return 0.75 * x[i]; }, "scale");
}

TEST(ElementwiseEmulation, SgdStepsWithAndWithoutMomentum) {
  std::mt19937 rng(23);
  const long n = 300;
  const std::vector<float> start = uniform_values<float>(rng, n, -2.0f, 2.0f),
                           grad = uniform_values<float>(rng, n, -2.0f, 2.0f),
                           velocity0 = uniform_values<float>(rng, n, -2.0f, 2.0f);
  for (bool momentum : {false, true}) {
    SCOPED_TRACE(momentum ? "momentum 0.9, weight decay 0.01" : "plain");
    std::vector<float> param = start, velocity = velocity0;
    const double lr = 0.1, mu = momentum ? 0.9 : 0.0, decay = momentum ? 0.01 : 0.0;
    ElementwiseArgs args{
        nullptr, grad.data(), nullptr, param.data(), momentum ? velocity.data() : nullptr, nullptr, n, 0, 0, 0, 0, lr,
        mu,      decay,       0};
    run<kernels::kEwSgd>(args);
    for (long i = 0; i < n; ++i) {
      const double step = (momentum ? mu * velocity0[i] : 0.0) + grad[i] + decay * start[i];
      ASSERT_NEAR(param[i], start[i] - lr * step, 1e-5) << i;
      if (momentum) {
        ASSERT_NEAR(velocity[i], step, 1e-5) << i;
      }
    }
  }
}

TEST(ElementwiseEmulation, RowSumsMatchTheirFormula) {
  std::mt19937 rng(29);
  const int batch = 3, rows = 70, cols = 90;
  const std::vector<float> x = uniform_values<float>(rng, static_cast<size_t>(batch) * rows * cols, -2.0f, 2.0f);
  const std::vector<int> counts = {70, 0, 33};  // grouped rows: an empty batch, a short one
  std::vector<float> sums(batch * cols, NAN);
  run<kernels::kEwSumRows>({x.data(), nullptr, nullptr, sums.data(), nullptr, counts.data(), batch * cols, rows, cols,
                            batch, 0, 0, 0, 0, 0});
  for (int b = 0; b < batch; ++b)
    for (int c = 0; c < cols; ++c) {
      double want = 0;
      for (int r = 0; r < counts[b]; ++r) want += x[(b * rows + r) * cols + c];
      ASSERT_NEAR(sums[b * cols + c], want, 1e-4) << "batch " << b << " column " << c;
    }
}

// Plain, padded past the rows (a GEMM's 16-byte rows), and with grouped counts (an empty batch, a
// short one, one past the rows): entries past a batch's used rows are zero, the rest x's.
TEST(ElementwiseEmulation, TransposePadsAndZeroesRowsPastTheCounts) {
  std::mt19937 rng(31);
  const int batch = 3, rows = 70, cols = 90;  // neither a multiple of the 16 x 16 tiles
  const std::vector<float> x = uniform_values<float>(rng, static_cast<size_t>(batch) * rows * cols, -2.0f, 2.0f);
  const std::vector<int> counts = {0, 33, 500};
  for (const auto& [padded, grouped] : {std::pair{rows, false}, {72, false}, {72, true}, {100, true}}) {
    SCOPED_TRACE(::testing::Message() << "padded to " << padded << (grouped ? ", grouped" : ""));
    const std::vector<float> out =
        testing::emulated_transpose(x.data(), grouped ? counts.data() : nullptr, batch, rows, cols, padded);
    for (int b = 0; b < batch; ++b) {
      const int used = grouped ? std::min(counts[b], rows) : rows;
      for (int c = 0; c < cols; ++c)
        for (int r = 0; r < padded; ++r)
          ASSERT_EQ(out[(static_cast<size_t>(b) * cols + c) * padded + r],
                    r < used ? x[(static_cast<size_t>(b) * rows + r) * cols + c] : 0.0f)
              << "batch " << b << " column " << c << " row " << r;
    }
  }
}

}  // namespace
}  // namespace switchyard
