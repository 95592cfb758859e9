// The cosine_top gate (Swin-MoE's router, tutel-semantics 1.1) against the float64 reference:
// the forward, and every gate parameter's and the input's gradient against central differences of
// the reference's loss; the temperature clamp; configs, files and the plan that covers training.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/error.h"
#include "core/settings.h"
#include "runtime/model_config.h"
#include "runtime/moe_layer.h"
#include "tests/runtime/layer_dtype_checks.h"
#include "tests/support/test_support.h"

namespace switchyard {
namespace {

MoeLayerConfig cosine_config(DType dtype) {
  MoeLayerConfig c = testing::cosine_test_config();
  c.dtype = dtype;
  return c;
}

TEST(CosineGate, ForwardMatchesTheReference) {
  for (DType dt : {DType::kFloat64, DType::kFloat32, DType::kBFloat16})
    testing::expect_cosine_forward_matches_reference(Context::global(), Context::global().cpu(), dt);
}

TEST(CosineGate, GradientsMatchCentralDifferencesOfTheReference) {
  for (DType dt : {DType::kFloat64, DType::kFloat32})
    testing::expect_cosine_gradients_match_differences(Context::global(), Context::global().cpu(), dt, {});
}

// Past log 100 the temperature is clamped: the scale stays 100 and the temperature's gradient is 0.
TEST(CosineGate, TemperaturePastTheClampScalesByOneHundredAndGetsNoGradient) {
  testing::expect_cosine_gradients_match_differences(Context::global(), Context::global().cpu(), DType::kFloat64, 5.0);
}

TEST(CosineGate, ConfigsFilesAndBadValues) {
  testing::TempDir dir;
  const MoeLayerConfig c = layer_config_from_json(
      R"({"model_dim": 8, "hidden_size": 12, "num_experts": 4, "gate_type": "cosine_top", "proj_dim": 6,
          "init_t": 0.25})");
  ASSERT_EQ(c.gates.size(), 1u);
  EXPECT_EQ(c.gates[0].type, GateType::kCosineTop);
  EXPECT_EQ(c.gates[0].proj_dim, 6);
  MoeLayer layer(Context::global(), Context::global().cpu(), c);
  EXPECT_NEAR(layer.parameter("gates.0.temperature").data_as<float>()[0], std::log(4.0), 1e-6);
  EXPECT_EQ(layer.parameter("gates.0.sim_matrix").shape(), (std::vector<int64_t>{6, 4}));
  EXPECT_EQ(layer.parameter("gates.0.cosine_projector.weight").shape(), (std::vector<int64_t>{6, 8}));
  EXPECT_EQ(layer.gate_parameter_count(), 6 * 8 + 6 + 6 * 4 + 1);
  layer.save(dir / "cosine.safetensors");
  const MoeLayerConfig read = layer_config_from_safetensors(dir / "cosine.safetensors");
  ASSERT_EQ(read.gates.size(), 1u);
  EXPECT_EQ(read.gates[0].type, GateType::kCosineTop);
  EXPECT_EQ(read.gates[0].proj_dim, 6);
  auto opened = MoeLayer::open(Context::global(), Context::global().cpu(), dir / "cosine.safetensors");
  EXPECT_EQ(opened->parameter_names(), layer.parameter_names());
  auto expect_error = [](const std::function<void()>& f, const std::string& needle) {
    try {
      f();
      ADD_FAILURE() << "no error; expected " << needle;
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error(
      [] { layer_config_from_json(R"({"model_dim": 8, "hidden_size": 8, "num_experts": 2, "gate_type": "cosine"})"); },
      "gate type 'cosine'; expected top or cosine_top");
  expect_error([] { layer_config_from_json(R"({"model_dim": 8, "hidden_size": 8, "num_experts": 2, "proj_dim": 0})"); },
               "proj_dim = 0");
  expect_error([] { layer_config_from_json(R"({"model_dim": 8, "hidden_size": 8, "num_experts": 2, "init_t": -1})"); },
               "init_t = -1");
  MoeLayerConfig top = c;
  top.gates = {GateConfig{}};
  MoeLayer top_layer(Context::global(), Context::global().cpu(), top);
  expect_error([&] { top_layer.load(dir / "cosine.safetensors"); }, "has no tensor 'gates.0.wg.weight'");
  expect_error(
      [] {
        ModelConfig::from_json_text(R"({"model_dim": 8, "hidden_size": 8, "num_experts": 2, "gate_type": "linear"})",
                                    "inline");
      },
      "gate_type \"linear\" is unknown");
}

// The plan of a cosine layer's training options holds every kernel its forward, backward and SGD
// step launch (what `switchyard warm --training` compiles for a cosine_top config).
TEST(CosineGate, TheTrainingPlanCoversForwardBackwardAndSgd) {
  testing::TempDir cache;
  Settings settings = Settings::from_environment();
  settings.cache_dir = cache.path();
  Context context(settings);
  for (bool fp32_gate : {false, true}) {
    MoeLayerConfig c = cosine_config(DType::kBFloat16);
    c.fp32_gate = fp32_gate;
    MoeLayer layer(context, context.cpu(), c);
    ForwardOptions o;
    o.save_for_backward = true;
    layer.prepare(o);
    const uint64_t loads = context.counters().loads;
    std::vector<uint16_t> x(10 * c.model_dim, 0x3f80);  // bfloat16 1.0
    const Tensor tx(x.data(), DType::kBFloat16, {10, c.model_dim});
    layer.forward(tx, o);
    layer.backward(tx, 0.01);
    layer.sgd_step(SgdOptions{});
    EXPECT_EQ(context.counters().loads, loads) << "fp32_gate " << fp32_gate << ": a kernel outside the plan";
  }
  ModelConfig model = ModelConfig::from_json_text(
      R"({"model_dim": 8, "hidden_size": 12, "num_experts": 4, "gate_type": "cosine_top", "proj_dim": 6})", "inline");
  std::string specs;
  for (const auto& spec : kernel_set(model, Target::cpu()).specs) specs += spec.to_string() + "\n";
  EXPECT_NE(specs.find("cosine<dtype=float32,op=0>"), std::string::npos) << specs;
  EXPECT_NE(specs.find("gemm<dtype=float32,n=6,k=8,trans_a=false,trans_b=true,bias=true,"), std::string::npos) << specs;
}

}  // namespace
}  // namespace switchyard
