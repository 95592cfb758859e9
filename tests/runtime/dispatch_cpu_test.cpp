// Dispatch encode / combine decode on the CPU against the reference, over random cases.
#include <gtest/gtest.h>

#include <random>

#include "core/error.h"
#include "runtime/dispatch_ops.h"
#include "tests/reference/dispatch_reference.h"
#include "tests/support/test_support.h"

namespace switchyard {
namespace {

template <typename T>
struct Case {
  reference::RoutingCase routing;
  std::vector<T> gates;
  Routing view() {
    Routing r;
    r.indices = Tensor(routing.indices.data(), DType::kInt32, {routing.top_k, routing.tokens});
    r.locations = Tensor(routing.locations.data(), DType::kInt32, {routing.top_k, routing.tokens});
    r.gates = Tensor(gates.data(), std::is_same_v<T, double> ? DType::kFloat64 : DType::kFloat32,
                     {routing.top_k, routing.tokens});
    r.capacity = routing.capacity;
    r.num_experts = routing.experts;
    return r;
  }
};

template <typename T>
Case<T> make_case(std::mt19937& rng) {
  std::uniform_int_distribution<int> pick(0, 1000);
  const int64_t dims[] = {1, 7, 64, 96};
  int64_t experts = 1 + pick(rng) % 8;
  int64_t k = 1 + pick(rng) % std::min<int64_t>(3, experts);
  int64_t tokens = pick(rng) % 70;
  double negative = pick(rng) % 2 ? 0.2 : 0.0;
  Case<T> c;
  c.routing = reference::random_routing(rng, tokens, dims[pick(rng) % 4], experts, k, negative);
  // Capacity: zero, too small (drops), or enough for every choice.
  int64_t need = (tokens * k + experts - 1) / experts + tokens % 3;
  const int64_t capacities[] = {0, need / 3, need, need + 5};
  c.routing.capacity = capacities[pick(rng) % 4];
  for (double g : c.routing.gates) c.gates.push_back(static_cast<T>(g));
  for (auto& g : c.routing.gates) g = static_cast<double>(static_cast<T>(g));  // what the kernel sees
  return c;
}

template <typename T>
class DispatchCpuTest : public ::testing::Test {};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(DispatchCpuTest, Types);

TYPED_TEST(DispatchCpuTest, EncodeAndDecodeMatchReference) {
  using T = TypeParam;
  const DType dtype = std::is_same_v<T, double> ? DType::kFloat64 : DType::kFloat32;
  // NOTE: encode is one product per element, exact in both (a float product is exact in
  // double); decode sums up to 3 products, so float allows a few ulps of reassociation.
  const double decode_tolerance = std::is_same_v<T, double> ? 1e-14 : 4e-6;
  std::mt19937 rng(1234);
  Context& context = Context::global();
  for (int trial = 0; trial < 60; ++trial) {
    Case<T> c = make_case<T>(rng);
    const auto& r = c.routing;
    bool postscore = trial % 2 == 0;
    SCOPED_TRACE("trial " + std::to_string(trial) + ": S=" + std::to_string(r.tokens) + " M=" +
                 std::to_string(r.model_dim) + " E=" + std::to_string(r.experts) + " k=" + std::to_string(r.top_k) +
                 " C=" + std::to_string(r.capacity) + (postscore ? " postscore" : " prescore"));
    std::vector<T> x = testing::random_normal<T>(rng, r.tokens * r.model_dim);
    std::vector<T> dispatched(r.experts * r.capacity * r.model_dim, T(7));  // stale data must be overwritten
    Routing view = c.view();
    dispatch_encode(context, Tensor(x.data(), dtype, {r.tokens, r.model_dim}), view, postscore,
                    Tensor(dispatched.data(), dtype, {r.experts, r.capacity, r.model_dim}));
    std::vector<double> expected = reference::encode(r, std::vector<double>(x.begin(), x.end()), postscore);
    for (size_t i = 0; i < expected.size(); ++i)
      ASSERT_EQ(dispatched[i], static_cast<T>(expected[i])) << "slot element " << i;

    std::vector<T> y = testing::random_normal<T>(rng, dispatched.size());
    std::vector<T> combined(r.tokens * r.model_dim, T(7));
    combine_decode(context, Tensor(y.data(), dtype, {r.experts, r.capacity, r.model_dim}), view, postscore,
                   Tensor(combined.data(), dtype, {r.tokens, r.model_dim}));
    std::vector<double> want = reference::decode(r, std::vector<double>(y.begin(), y.end()), postscore);
    for (size_t i = 0; i < want.size(); ++i) {
      ASSERT_NEAR(combined[i], want[i], decode_tolerance * (1.0 + std::abs(want[i]))) << "token element " << i;
    }
  }
}

TEST(DispatchCpuBadInput, RejectsWithClearErrors) {
  Context& context = Context::global();
  std::mt19937 rng(7);
  auto r = reference::random_routing(rng, 4, 8, 3, 2, 0.0);
  r.capacity = 4;
  std::vector<float> gates(r.gates.begin(), r.gates.end());
  std::vector<float> x(4 * 8), out(3 * 4 * 8);
  Routing view;
  view.indices = Tensor(r.indices.data(), DType::kInt32, {2, 4});
  view.locations = Tensor(r.locations.data(), DType::kInt32, {2, 4});
  view.gates = Tensor(gates.data(), DType::kFloat32, {2, 4});
  view.capacity = 4;
  view.num_experts = 3;
  Tensor xt(x.data(), DType::kFloat32, {4, 8});
  Tensor ot(out.data(), DType::kFloat32, {3, 4, 8});
  auto expect_error = [&](const Routing& v, const Tensor& in, const Tensor& o, const std::string& needle) {
    try {
      dispatch_encode(context, in, v, true, o);
      FAIL() << "expected an error containing '" << needle << "'";
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error(view, xt, Tensor(out.data(), DType::kFloat32, {3, 5, 8}), "expected shape [3, 4, 8]");
  expect_error(view, xt, Tensor(out.data(), DType::kFloat64, {3, 4, 8}), "expected float32");
  Routing bad_gates = view;
  bad_gates.gates = Tensor(gates.data(), DType::kFloat64, {2, 4});
  expect_error(bad_gates, xt, ot, "expected float32 for float32 data");
  Routing no_choices = view;
  no_choices.indices = Tensor(r.indices.data(), DType::kInt32, {0, 4});
  expect_error(no_choices, xt, ot, "top_k = 0");
  std::vector<int> out_of_range = r.indices;
  out_of_range[5] = 3;
  Routing bad_index = view;
  bad_index.indices = Tensor(out_of_range.data(), DType::kInt32, {2, 4});
  expect_error(bad_index, xt, ot, "routing index 3 at choice 1, token 1 is not below num_experts = 3");
  expect_error(view, Tensor(x.data(), DType::kInt32, {4, 8}), Tensor(out.data(), DType::kInt32, {3, 4, 8}),
               "does not support dtype int32 on target cpu");
  Routing negative_capacity = view;
  negative_capacity.capacity = -1;
  expect_error(negative_capacity, xt, ot, "capacity = -1");
}

}  // namespace
}  // namespace switchyard
