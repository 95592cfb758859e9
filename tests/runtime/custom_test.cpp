// User gates and experts inside the layer (include/switchyard/custom.h): an expert function and a
// gate written in plain loops, equal to the built-in FFN and linear gate with the same weights,
// give the built-in layer's outputs and gradients; a gate returning a wrong shape or non-finite
// logits is a clear error.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>

#include "core/error.h"
#include "examples/loop_ffn_experts.h"
#include "runtime/moe_layer.h"
#include "tests/support/test_support.h"

namespace switchyard {
namespace {

using examples::LoopFfnExperts;
using examples::values_of;

// The linear gate in loops: logits = x wg^T, wg [E, M].
class LoopLinearGate : public CustomGate {
 public:
  explicit LoopLinearGate(std::vector<double> wg, int64_t experts) : wg_(std::move(wg)), e_(experts) {}
  Tensor forward(const Tensor& x) override {
    const int64_t s = x.dim(0), m = x.dim(1);
    logits_.assign(s * e_, 0.0);
    for (int64_t t = 0; t < s; ++t)
      for (int64_t e = 0; e < e_; ++e)
        for (int64_t j = 0; j < m; ++j) logits_[t * e_ + e] += x.data_as<const double>()[t * m + j] * wg_[e * m + j];
    return Tensor(logits_.data(), DType::kFloat64, {s, e_});
  }
  void backward(const Tensor& x, const Tensor& d_logits, const Tensor& dx) override {
    const int64_t s = x.dim(0), m = x.dim(1);
    grad_.assign(wg_.size(), 0.0);
    for (int64_t t = 0; t < s; ++t)
      for (int64_t j = 0; j < m; ++j) {
        double sum = 0;
        for (int64_t e = 0; e < e_; ++e) {
          const double d = d_logits.data_as<const double>()[t * e_ + e];
          sum += d * wg_[e * m + j];
          grad_[e * m + j] += d * x.data_as<const double>()[t * m + j];
        }
        dx.data_as<double>()[t * m + j] = sum;
      }
  }
  std::vector<double> logits_, wg_, grad_;
  int64_t e_;
};

MoeLayerConfig base_config() {
  MoeLayerConfig c;
  c.model_dim = 12;
  c.hidden_size = 10;
  c.num_experts = 3;
  c.dtype = DType::kFloat64;
  return c;
}

void expect_near(const std::vector<double>& got, const std::vector<double>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], 1e-12 * (1 + std::abs(want[i]))) << what << " " << i;
}

TEST(Custom, ExpertsAndGateEqualToTheBuiltInsGiveTheirOutputsAndGradients) {
  Context& context = Context::global();
  MoeLayer builtin(context, context.cpu(), base_config());
  builtin.init_parameters(8);
  auto experts = std::make_shared<LoopFfnExperts>(builtin, LoopFfnExperts::relu());
  auto gate = std::make_shared<LoopLinearGate>(values_of(builtin.parameter("gates.0.wg.weight")), 3);
  MoeLayerConfig config = base_config();
  config.custom_experts = experts;
  config.gates = {GateConfig{.type = GateType::kCustom, .custom = gate}};
  MoeLayer custom(context, context.cpu(), config);
  EXPECT_TRUE(custom.parameter_names().empty()) << "the user's objects hold every parameter";
  std::mt19937 rng(4);
  auto x = testing::random_normal<double>(rng, 25 * 12), dy = testing::random_normal<double>(rng, 25 * 12);
  const Tensor tx(x.data(), DType::kFloat64, {25, 12}), tdy(dy.data(), DType::kFloat64, {25, 12});
  for (bool grouped : {false, true}) {
    SCOPED_TRACE(grouped ? "dropless grouped" : "capacity 1.0");
    ForwardOptions o;
    o.save_for_backward = true;
    o.capacity_factor = grouped ? 0 : 1.0;
    o.dropless_grouped = grouped;
    const ForwardResult want = builtin.forward(tx, o);
    const ForwardResult got = custom.forward(tx, o);
    expect_near(values_of(got.output), values_of(want.output), "output");
    EXPECT_NEAR(got.l_aux(), want.l_aux(), 1e-12);
    const BackwardResult want_back = builtin.backward(tdy, 0.1);
    experts->reset_gradients();
    const BackwardResult got_back = custom.backward(tdy, 0.1);
    expect_near(values_of(got_back.grad_input), values_of(want_back.grad_input), "dx");
    expect_near(gate->grad_, values_of(builtin.gradient("gates.0.wg.weight")), "gate weight gradient");
    for (const char* name :
         {"experts.batched_fc1_w", "experts.batched_fc1_bias", "experts.batched_fc2_w", "experts.batched_fc2_bias"})
      expect_near(experts->gradient(name), values_of(builtin.gradient(name)), name);
  }
}

TEST(Custom, BadCustomGatesAreClearErrors) {
  Context& context = Context::global();
  std::vector<double> x(6 * 12, 0.5);
  const Tensor tx(x.data(), DType::kFloat64, {6, 12});
  struct FixedGate : CustomGate {
    std::vector<double> values;
    std::vector<int64_t> shape;
    Tensor forward(const Tensor&) override { return Tensor(values.data(), DType::kFloat64, shape); }
    void backward(const Tensor&, const Tensor&, const Tensor&) override {}
  };
  auto wrong_shape = std::make_shared<FixedGate>();
  wrong_shape->values.assign(6 * 2, 0.0);
  wrong_shape->shape = {6, 2};
  auto non_finite = std::make_shared<FixedGate>();
  non_finite->values.assign(6 * 3, 0.0);
  non_finite->values[7] = std::nan("");
  non_finite->shape = {6, 3};
  for (const auto& [gate, needle] : std::vector<std::pair<std::shared_ptr<CustomGate>, std::string>>{
           {wrong_shape, "custom gate 0 returned float64[6, 2]"},
           {non_finite, "custom gate 0 returned the logit nan at token 2, expert 1"}}) {
    MoeLayerConfig config = base_config();
    config.gates = {GateConfig{.type = GateType::kCustom, .custom = gate}};
    MoeLayer layer(context, context.cpu(), config);
    try {
      layer.forward(tx, ForwardOptions{});
      ADD_FAILURE() << "expected: " << needle;
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  }
  MoeLayerConfig missing = base_config();
  missing.gates = {GateConfig{.type = GateType::kCustom}};
  EXPECT_THROW(missing.validate(), UserError);
  MoeLayerConfig stray = base_config();
  stray.gates = {GateConfig{.custom = wrong_shape}};
  EXPECT_THROW(stray.validate(), UserError);
}

}  // namespace
}  // namespace switchyard
