// Helloworld's loss on the CPU device against the host reference: the same sums in the same
// order, so the loss and the gradient are bit-identical in float64 and float32; bad tensors are
// clear errors.
#include <gtest/gtest.h>

#include <random>

#include "core/error.h"
#include "runtime/example_loss.h"
#include "tests/reference/example_loss_reference.h"
#include "tests/support/test_support.h"

namespace switchyard {
namespace {

template <typename T>
void expect_same_as_reference(int b, int t, int m) {
  SCOPED_TRACE(std::to_string(b) + " x " + std::to_string(t) + " x " + std::to_string(m));
  Context& context = Context::global();
  std::mt19937 rng(b * 131 + t);
  std::vector<T> y = testing::random_normal<T>(rng, static_cast<size_t>(b) * t * m), grad(y.size(), T(-7));
  const DType dtype = std::is_same_v<T, double> ? DType::kFloat64 : DType::kFloat32;
  ExampleLoss loss(context, context.cpu(), b, t, m);
  Tensor ty(y.data(), dtype, {int64_t{b} * t, m}), tg(grad.data(), dtype, {int64_t{b} * t, m});
  std::vector<double> want_grad;
  const double want = reference::example_loss(std::vector<double>(y.begin(), y.end()), b, t, m, &want_grad);
  EXPECT_EQ(loss(ty, &tg), want);
  for (size_t i = 0; i < grad.size(); ++i) ASSERT_EQ(grad[i], static_cast<T>(want_grad[i])) << "element " << i;
  EXPECT_EQ(loss(ty, nullptr), want) << "eval (no gradient) gives the same loss";
}

TEST(ExampleLoss, MatchesTheReferenceBitForBit) {
  expect_same_as_reference<double>(3, 17, 5);
  expect_same_as_reference<float>(4, 64, 48);
  expect_same_as_reference<float>(1, 1, 1);  // one token: softmax 1, loss 0, gradient 0
  expect_same_as_reference<float>(16, 512, 8);
}

TEST(ExampleLoss, BadTensorsAreClearErrors) {
  Context& context = Context::global();
  std::vector<float> y(2 * 3 * 4), small(5);
  ExampleLoss loss(context, context.cpu(), 2, 3, 4);
  try {
    loss(Tensor(small.data(), DType::kFloat32, {5, 1}), nullptr);
    FAIL() << "expected a UserError";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("expected contiguous [6, 4]"), std::string::npos) << e.what();
  }
  std::vector<double> wide(y.size());
  Tensor grad_of_other_dtype(wide.data(), DType::kFloat64, {6, 4});
  EXPECT_THROW(loss(Tensor(y.data(), DType::kFloat32, {6, 4}), &grad_of_other_dtype), UserError);
  EXPECT_THROW(ExampleLoss(context, context.cpu(), 0, 3, 4), UserError);
}

}  // namespace
}  // namespace switchyard
