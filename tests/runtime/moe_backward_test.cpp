// The layer's gradients against central finite differences of the reference forward (fp64), for
// top-1/2/3, capacity with and without drops, dropless padded and grouped, post- and pre-score,
// every activation, SwiGLU, bias flags, BPR and the weighted aux loss; plus the float32 path
// against float64, the training plan and the bad inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/error.h"
#include "runtime/moe_layer.h"
#include "tests/reference/layer_backward_reference.h"
#include "tests/reference/layer_reference.h"
#include "tests/support/test_support.h"

namespace switchyard {
namespace {

struct Trial {
  std::string name;
  MoeLayerConfig config;
  ForwardOptions options;
  int64_t tokens = 12;
  double aux_weight = 0;
  bool all_dropped = false;  // no token reaches an expert: the expert gradients are exactly zero
};

MoeLayerConfig base_config(DType dtype = DType::kFloat64) {
  MoeLayerConfig c;
  c.model_dim = 8;
  c.hidden_size = 12;
  c.num_experts = 4;
  c.dtype = dtype;
  return c;
}

std::vector<Trial> trials() {
  std::vector<Trial> list;
  auto add = [&](std::string name, auto&& edit) {
    Trial t;
    t.name = std::move(name);
    t.config = base_config();
    edit(t);
    list.push_back(t);
  };
  add("relu top2 cf1 postscore", [](Trial&) {});
  add("gelu top1 cf0.5 drops prescore aux", [](Trial& t) {
    t.config.activation = kernels::kActGelu;
    t.options.top_k = 1;
    t.options.capacity_factor = 0.5;
    t.options.is_postscore = false;
    t.aux_weight = 0.3;
  });
  add("silu top2 dropless padded unnormalized aux", [](Trial& t) {
    t.config.activation = kernels::kActSilu;
    t.options.capacity_factor = 0;
    t.options.normalize_gate = false;
    t.aux_weight = 0.05;
  });
  add("relu top2 bounded grouped bpr no bias", [](Trial& t) {
    t.config.has_fc1_bias = t.config.has_fc2_bias = false;
    t.options.capacity_factor = -1.25;
    t.options.dropless_grouped = true;
    t.options.batch_prioritized_routing = true;
  });
  add("gelu top3 cf2 bpr fc1 bias only prescore", [](Trial& t) {
    t.config.activation = kernels::kActGelu;
    t.config.has_fc2_bias = false;
    t.options.top_k = 3;
    t.options.capacity_factor = 2;
    t.options.batch_prioritized_routing = true;
    t.options.is_postscore = false;
  });
  add("silu top1 grouped dropless aligned", [](Trial& t) {
    t.config.activation = kernels::kActSilu;
    t.options.top_k = 1;
    t.options.capacity_factor = 0;
    t.options.dropless_grouped = true;
    t.options.megablocks_size = 4;
  });
  add("swiglu top2 cf1 aux", [](Trial& t) {
    t.config.expert_type = ExpertType::kSwiglu;
    t.aux_weight = 0.1;
  });
  add("swiglu top1 grouped prescore", [](Trial& t) {
    t.config.expert_type = ExpertType::kSwiglu;
    t.options.top_k = 1;
    t.options.capacity_factor = 0;
    t.options.dropless_grouped = true;
    t.options.is_postscore = false;
  });
  add("relu top4 of 4 cf0.5 drops", [](Trial& t) {
    t.options.top_k = 4;
    t.options.capacity_factor = 0.5;
  });
  add("zero capacity drops every token", [](Trial& t) {
    t.options.capacity_factor = 0.3;  // C = 2 * floor(0.3 * 3) = 0
    t.aux_weight = 0.5;               // only the aux loss reaches the gate
    t.all_dropped = true;
  });
  return list;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += a[i] * b[i];
  return sum;
}

std::vector<double> values(const Tensor& t) {
  if (t.dtype() == DType::kFloat64) return std::vector<double>(t.data_as<double>(), t.data_as<double>() + t.numel());
  return std::vector<double>(t.data_as<float>(), t.data_as<float>() + t.numel());
}

// Up to `count` indices of [0, n), spread over the range.
std::vector<size_t> sample(size_t n, size_t count) {
  std::vector<size_t> picked;
  for (size_t i = 0; i < std::min(n, count); ++i) picked.push_back(i * n / std::min(n, count));
  return picked;
}

// A trial's forward (saving for backward) and backward on random x and output gradient r.
struct Pass {
  std::vector<double> x, r;
  BackwardResult grads;
};

Pass forward_backward(MoeLayer& layer, const Trial& t, unsigned seed, bool input_gradient = true) {
  const int64_t s = t.tokens, m = t.config.model_dim;
  std::mt19937 rng(seed);
  Pass pass;
  pass.x = testing::random_normal<double>(rng, s * m);
  pass.r = testing::random_normal<double>(rng, s * m);
  ForwardOptions train = t.options;
  train.save_for_backward = true;
  layer.forward(Tensor(pass.x.data(), DType::kFloat64, {s, m}), train);
  BackwardOptions options;
  options.l_aux_weight = t.aux_weight;
  options.input_gradient = input_gradient;
  pass.grads = layer.backward(Tensor(pass.r.data(), DType::kFloat64, {s, m}), options);
  return pass;
}

// Every parameter gradient of the layer's last backward against the reference backward's.
void expect_parameter_gradients_are(const MoeLayer& layer, const Trial& t, const reference::LayerParams& want) {
  ASSERT_EQ(want.size(), layer.parameter_names().size());
  for (const auto& name : layer.parameter_names()) {
    const auto got = values(layer.gradient(name));
    if (t.all_dropped && name.rfind("experts.", 0) == 0) {
      EXPECT_EQ(got, want.at(name)) << name;
      continue;
    }
    EXPECT_LT(testing::relative_error(got, want.at(name)), 1e-12) << name;
  }
}

TEST(MoeBackward, GradientsMatchFiniteDifferencesOfTheReference) {
  for (const Trial& t : trials()) {
    SCOPED_TRACE(t.name);
    const int64_t s = t.tokens;
    MoeLayer layer(Context::global(), Context::global().cpu(), t.config);
    layer.init_parameters(7);
    const auto [x, r, grads] = forward_backward(layer, t, 11);
    const reference::LayerParams params = reference::layer_params(layer);
    // L = <r, output> + w * l_aux: its gradient wrt the output is r.
    auto loss = [&](const reference::LayerParams& p, const std::vector<double>& input) {
      double l_aux = 0;
      auto out = reference::layer_forward(t.config, p, input, s, t.options, &l_aux);
      return dot(r, out) + t.aux_weight * l_aux;
    };
    // NOTE: central differences with h = 1e-6 in fp64 are exact to ~1e-9 here (truncation h^2,
    // rounding 1e-16 * |L| / h); the tolerance leaves room for a rare near-kink of relu.
    const double h = 1e-6, tol = 2e-6;
    const auto got_x = values(grads.grad_input);
    for (size_t i : sample(x.size(), 24)) {
      auto plus = x, minus = x;
      plus[i] += h;
      minus[i] -= h;
      const double fd = (loss(params, plus) - loss(params, minus)) / (2 * h);
      ASSERT_NEAR(got_x[i], fd, tol * (1 + std::abs(fd))) << "dL/dx[" << i << "]";
    }
    for (const auto& [name, value] : params) {
      const auto got = values(layer.gradient(name));
      ASSERT_EQ(got.size(), value.size()) << name;
      double largest = 0;
      for (size_t i : sample(value.size(), 40)) {
        auto plus = params, minus = params;
        plus[name][i] += h;
        minus[name][i] -= h;
        const double fd = (loss(plus, x) - loss(minus, x)) / (2 * h);
        largest = std::max(largest, std::abs(fd));
        ASSERT_NEAR(got[i], fd, tol * (1 + std::abs(fd))) << "dL/d" << name << "[" << i << "]";
      }
      if (t.all_dropped && name.rfind("experts.", 0) == 0) {
        for (double g : got) ASSERT_EQ(g, 0.0) << name;
      } else {
        EXPECT_GT(largest, 1e-6) << name << ": every sampled gradient is zero, the check proves little";
      }
    }
  }
}

// The host oracle GPU suites compare with (no CPU JIT there) matches the layer proven above.
TEST(MoeBackward, TheReferenceBackwardMatchesTheLayer) {
  for (const Trial& t : trials()) {
    SCOPED_TRACE(t.name);
    MoeLayer layer(Context::global(), Context::global().cpu(), t.config);
    layer.init_parameters(3);
    const auto [x, r, grads] = forward_backward(layer, t, 5);
    auto want =
        reference::layer_backward(t.config, reference::layer_params(layer), x, r, t.tokens, t.options, t.aux_weight);
    EXPECT_LT(testing::relative_error(values(grads.grad_input), want.input), 1e-12) << "dL/dx";
    expect_parameter_gradients_are(layer, t, want.params);
  }
}

// Without the input gradient (x needs none, as in Tutel's helloworld) every parameter's gradient is
// still the reference's, for every trial (pre-score, whose gate gradient reads the experts' input
// gradient, and SwiGLU among them), and no dL/dx is returned.
TEST(MoeBackward, WithoutTheInputGradientEveryParameterGradientIsStillTheReferences) {
  for (const Trial& t : trials()) {
    SCOPED_TRACE(t.name);
    MoeLayer layer(Context::global(), Context::global().cpu(), t.config);
    layer.init_parameters(3);
    const auto [x, r, grads] = forward_backward(layer, t, 5, /*input_gradient=*/false);
    EXPECT_EQ(grads.grad_input.data(), nullptr);
    EXPECT_EQ(grads.storage, nullptr);
    auto want =
        reference::layer_backward(t.config, reference::layer_params(layer), x, r, t.tokens, t.options, t.aux_weight);
    expect_parameter_gradients_are(layer, t, want.params);
  }
}

TEST(MoeBackward, Float32MatchesFloat64AndFp32GateMatchesTheWideGate) {
  for (bool fp32_gate : {false, true}) {
    SCOPED_TRACE(fp32_gate ? "float64 layer with fp32_gate" : "float32 layer");
    MoeLayerConfig wide_config = base_config(DType::kFloat64);
    MoeLayerConfig narrow_config = base_config(fp32_gate ? DType::kFloat64 : DType::kFloat32);
    narrow_config.fp32_gate = fp32_gate;
    MoeLayer wide(Context::global(), Context::global().cpu(), wide_config);
    MoeLayer narrow(Context::global(), Context::global().cpu(), narrow_config);
    wide.init_parameters(3);
    narrow.init_parameters(3);
    const int64_t s = 16, m = wide_config.model_dim;
    std::mt19937 rng(5);
    auto x = testing::random_normal<double>(rng, s * m), r = testing::random_normal<double>(rng, s * m);
    std::vector<float> xf(x.begin(), x.end()), rf(r.begin(), r.end());
    ForwardOptions o;
    o.save_for_backward = true;
    const DType nd = narrow_config.dtype;
    wide.forward(Tensor(x.data(), DType::kFloat64, {s, m}), o);
    narrow.forward(nd == DType::kFloat64 ? Tensor(x.data(), nd, {s, m}) : Tensor(xf.data(), nd, {s, m}), o);
    auto gw = values(wide.backward(Tensor(r.data(), DType::kFloat64, {s, m}), 0.2).grad_input);
    auto gn = values(
        narrow.backward(nd == DType::kFloat64 ? Tensor(r.data(), nd, {s, m}) : Tensor(rf.data(), nd, {s, m}), 0.2)
            .grad_input);
    // NOTE: float32 rounding (parameters rounded to float, sums of <= 12 products) bounds the
    // difference near 1e-5 of the magnitude; routing is identical for these well-separated scores.
    for (size_t i = 0; i < gw.size(); ++i) ASSERT_NEAR(gn[i], gw[i], 1e-4 * (1 + std::abs(gw[i]))) << i;
    for (const auto& name : wide.parameter_names()) {
      auto a = values(wide.gradient(name)), b = values(narrow.gradient(name));
      for (size_t i = 0; i < a.size(); ++i) {
        ASSERT_NEAR(b[i], a[i], 1e-4 * (1 + std::abs(a[i]))) << name << i;
      }
    }
  }
}

TEST(MoeBackward, TrainingPlanHoldsEveryKernelOfForwardBackwardAndSgd) {
  testing::TempDir cache;
  Settings settings = Settings::from_environment();
  settings.cache_dir = cache.path();
  Context context(settings);
  for (ExpertType type : {ExpertType::kFfn, ExpertType::kSwiglu}) {
    MoeLayerConfig config = base_config(DType::kFloat32);
    config.expert_type = type;
    config.fp32_gate = true;
    MoeLayer layer(context, context.cpu(), config);
    ForwardOptions o;
    o.save_for_backward = true;
    o.is_postscore = type == ExpertType::kFfn;
    layer.prepare(o);
    const uint64_t loads = context.counters().loads;
    std::vector<float> x(10 * config.model_dim, 0.5f), r(10 * config.model_dim, 1.0f);
    x[3] = -1;
    layer.forward(Tensor(x.data(), DType::kFloat32, {10, config.model_dim}), o);
    layer.backward(Tensor(r.data(), DType::kFloat32, {10, config.model_dim}), 0.01);
    SgdOptions sgd;
    sgd.momentum = 0.9;
    sgd.weight_decay = 0.01;
    layer.sgd_step(sgd);
    EXPECT_EQ(context.counters().loads, loads) << "training loaded a kernel its plan did not hold";
  }
}

TEST(MoeBackward, SgdStepMovesEveryParameterAgainstItsGradient) {
  MoeLayer layer(Context::global(), Context::global().cpu(), base_config());
  layer.init_parameters(2);
  const int64_t s = 9, m = 8;
  std::mt19937 rng(1);
  auto x = testing::random_normal<double>(rng, s * m), r = testing::random_normal<double>(rng, s * m);
  ForwardOptions o;
  o.save_for_backward = true;
  layer.forward(Tensor(x.data(), DType::kFloat64, {s, m}), o);
  layer.backward(Tensor(r.data(), DType::kFloat64, {s, m}));
  std::map<std::string, std::vector<double>> before, grad;
  for (const auto& name : layer.parameter_names()) {
    before[name] = values(layer.parameter(name));
    grad[name] = values(layer.gradient(name));
  }
  SgdOptions sgd;
  sgd.lr = 0.5;
  sgd.momentum = 0.9;
  sgd.weight_decay = 0.1;
  layer.sgd_step(sgd);  // first step: v = g + wd p, p -= lr v
  layer.sgd_step(sgd);  // second, same gradient: v = 0.9 v + g + wd p'
  for (const auto& name : layer.parameter_names()) {
    auto after = values(layer.parameter(name));
    for (size_t i = 0; i < after.size(); ++i) {
      const double p0 = before[name][i], g = grad[name][i];
      const double v1 = g + 0.1 * p0, p1 = p0 - 0.5 * v1;
      const double v2 = 0.9 * v1 + g + 0.1 * p1, p2 = p1 - 0.5 * v2;
      ASSERT_NEAR(after[i], p2, 1e-12) << name << "[" << i << "]";
    }
  }
  // The forward reads the updated weights (the packed copies follow the parameters).
  MoeLayer copy(Context::global(), Context::global().cpu(), base_config());
  testing::TempDir dir;
  layer.save(dir / "w.safetensors");
  copy.load(dir / "w.safetensors");
  ForwardOptions eval;
  EXPECT_EQ(values(layer.forward(Tensor(x.data(), DType::kFloat64, {s, m}), eval).output),
            values(copy.forward(Tensor(x.data(), DType::kFloat64, {s, m}), eval).output));
}

TEST(MoeBackward, BadCallsAreClearErrors) {
  MoeLayer layer(Context::global(), Context::global().cpu(), base_config());
  const int64_t s = 6, m = 8;
  std::vector<double> x(s * m, 0.1), r(s * m, 1.0), short_r((s - 1) * m, 1.0);
  auto message = [](auto&& call) {
    try {
      call();
    } catch (const UserError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([&] {
              layer.backward(Tensor(r.data(), DType::kFloat64, {s, m}));
            }).find("backward needs a forward"),
            std::string::npos);
  EXPECT_NE(message([&] { layer.sgd_step({}); }).find("needs the gradients"), std::string::npos);
  EXPECT_NE(message([&] { layer.gradient("experts.batched_fc1_w"); }).find("no gradient"), std::string::npos);
  ForwardOptions o;
  o.save_for_backward = true;
  layer.forward(Tensor(x.data(), DType::kFloat64, {s, m}), o);
  EXPECT_NE(message([&] {
              layer.backward(Tensor(short_r.data(), DType::kFloat64, {s - 1, m}));
            }).find("grad_output is float64[5, 8] on cpu; the saved forward expects contiguous float64[6, 8]"),
            std::string::npos);
  EXPECT_NE(message([&] {
              layer.backward(Tensor(r.data(), DType::kFloat64, {s, m}), NAN);
            }).find("l_aux_weight"),
            std::string::npos);
  EXPECT_GT(layer.saved_bytes_per_token(), 0);
  layer.backward(Tensor(r.data(), DType::kFloat64, {s, m}));  // the save survived the bad calls
  EXPECT_EQ(layer.saved_bytes_per_token(), 0);
  EXPECT_NE(message([&] {
              layer.backward(Tensor(r.data(), DType::kFloat64, {s, m}));
            }).find("backward needs a forward"),
            std::string::npos)
      << "a second backward of one forward";
  EXPECT_NE(message([&] { layer.gradient("no.such"); }).find("no parameter 'no.such'"), std::string::npos);
  o.is_gshard_loss = false;
  o.gate_noise = 1;
  layer.forward(Tensor(x.data(), DType::kFloat64, {s, m}), o);
  EXPECT_NE(message([&] {
              layer.backward(Tensor(r.data(), DType::kFloat64, {s, m}), 0.5);
            }).find("load_importance_loss"),
            std::string::npos);
  layer.backward(Tensor(r.data(), DType::kFloat64, {s, m}), 0);  // weight 0 needs no loss backward
}

}  // namespace
}  // namespace switchyard
