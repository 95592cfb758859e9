// MoeLayerConfig::pack_expert_weights on the CPU: the packed layer's forward has the bits of the
// same layer without it (both expert types, few and many tokens, capacity and dropless), its panels
// follow every change of the weights (sgd_step, load, parameters_updated), warm compiles the
// packing, and the config field is checked.
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "core/settings.h"
#include "runtime/layer_plan.h"
#include "runtime/model_config.h"
#include "runtime/moe_layer.h"
#include "tests/runtime/layer_dtype_checks.h"
#include "tests/support/dot_product_cpu.h"
#include "tests/support/expect_error.h"
#include "tests/support/test_support.h"

namespace switchyard {
namespace {

constexpr DType kBf16 = DType::kBFloat16;

// M = 96 (fc2's N: a tile of 64 columns and two vectors past it), H = 200 (fc1's N: three tiles
// and 8 columns).
MoeLayerConfig packed_config(ExpertType type, bool packed) {
  MoeLayerConfig config = testing::layer_config(96, 200, 4, kBf16);
  config.expert_type = type;
  config.pack_expert_weights = packed;
  return config;
}

Settings dot_settings(const testing::DotProductCpu& dot) {
  Settings settings = Settings::from_environment();
  settings.cpu = dot.cpu;
  return settings;
}

std::string output(MoeLayer& layer, const Buffer& x, int64_t tokens, bool dropless) {
  ForwardOptions options;
  options.top_k = 2;
  options.capacity_factor = dropless ? 0.0 : 1.0;
  options.dropless_grouped = dropless;
  const Tensor input = x.view(kBf16, {tokens, layer.config().model_dim});
  return testing::host_bytes(layer.device(), layer.forward(input, options).output);
}

TEST(PackedExpertWeights, ForwardHasTheBitsOfTheUnpackedLayer) {
  const testing::DotProductCpu dot = testing::dot_product_cpu();
  if (!dot.usable) GTEST_SKIP() << dot.why_not;
  Context context(dot_settings(dot));
  Device& cpu = context.cpu();
  for (ExpertType type : {ExpertType::kFfn, ExpertType::kSwiglu}) {
    MoeLayer plain(context, cpu, packed_config(type, false)), packed(context, cpu, packed_config(type, true));
    for (const std::string& name : plain.parameter_names())
      ASSERT_EQ(testing::host_bytes(cpu, plain.parameter(name)), testing::host_bytes(cpu, packed.parameter(name)))
          << name << ": the two layers drew different weights";
    for (int64_t tokens : {5, 16, 300})
      for (bool dropless : {false, true}) {
        SCOPED_TRACE(std::string(type == ExpertType::kFfn ? "ffn, " : "swiglu, ") + std::to_string(tokens) +
                     (dropless ? " tokens, dropless" : " tokens"));
        const Buffer x = testing::normal_input(cpu, kBf16, tokens, 96, static_cast<unsigned>(tokens));
        EXPECT_EQ(output(packed, x, tokens, dropless), output(plain, x, tokens, dropless));
      }
  }
}

// After each change both layers made alike, their forwards agree; weights written in place without
// parameters_updated() do not reach the packed layer's GEMMs (its panels are what they read).
TEST(PackedExpertWeights, PanelsFollowEveryChangeOfTheWeights) {
  const testing::DotProductCpu dot = testing::dot_product_cpu();
  if (!dot.usable) GTEST_SKIP() << dot.why_not;
  Context context(dot_settings(dot));
  Device& cpu = context.cpu();
  const ExpertType type = ExpertType::kSwiglu;
  MoeLayer plain(context, cpu, packed_config(type, false)), packed(context, cpu, packed_config(type, true));
  const Buffer x = testing::normal_input(cpu, kBf16, 24, 96, 3);
  const Tensor input = x.view(kBf16, {24, 96});

  ForwardOptions train;
  train.save_for_backward = true;
  SgdOptions sgd;
  sgd.lr = 0.5;
  for (MoeLayer* layer : {&plain, &packed}) {
    layer->forward(input, train);
    layer->backward(input, 0.01);  // the input doubles as the output's gradient
    layer->sgd_step(sgd);
  }
  EXPECT_EQ(output(packed, x, 24, false), output(plain, x, 24, false)) << "after sgd_step";

  testing::TempDir dir;
  MoeLayer source(context, cpu, packed_config(type, false));
  source.init_parameters(9);
  source.save(dir / "source.safetensors");
  plain.load(dir / "source.safetensors");
  packed.load(dir / "source.safetensors");
  EXPECT_EQ(output(packed, x, 24, false), output(plain, x, 24, false)) << "after load";

  source.init_parameters(10);
  testing::write_parameters(cpu, plain, source);
  testing::write_parameters(cpu, packed, source);
  EXPECT_EQ(output(packed, x, 24, false), output(plain, x, 24, false)) << "after parameters_updated";

  source.init_parameters(11);
  for (const std::string& name : packed.parameter_names())  // written, but the layer not told
    cpu.copy_within(packed.parameter(name).data(), source.parameter(name).data(), source.parameter(name).nbytes());
  testing::write_parameters(cpu, plain, source);
  EXPECT_NE(output(packed, x, 24, false), output(plain, x, 24, false))
      << "the packed layer's GEMMs read the weights, not its panels";
  packed.parameters_updated();
  EXPECT_EQ(output(packed, x, 24, false), output(plain, x, 24, false));
}

// warm's kernel set holds the packing of each forward weight where its GEMM reads panels (a CPU
// with AMD's dot products), and nothing of it elsewhere or without the field.
TEST(PackedExpertWeights, WarmCompilesThePackingWhereGemmsReadPanels) {
  ModelConfig model;
  model.name = "packed";
  model.model_dim = 96;
  model.hidden_size = 200;
  model.num_experts = 4;
  model.expert_type = "swiglu";
  model.dtypes = {kBf16, DType::kFloat32};
  auto packings = [&](const Target& target) {
    int count = 0;
    for (const KernelSpec& spec : kernel_set(model, target).specs) count += spec.family == "gemm_pack_b";
    return count;
  };
  const Target zen4 = Target::cpu(64, 1 << 20, kCpuBf16Dot | kCpuFastBf16Dot | kCpu32VectorRegisters);
  const Target amx = Target::cpu(64, 2 << 20, kCpuBf16Dot | kCpuAmxBf16 | kCpu32VectorRegisters);
  EXPECT_EQ(packings(zen4), 0);
  model.pack_expert_weights = true;
  EXPECT_EQ(packings(zen4), 2) << "W1 and W2 share a packing (same N, K), W3 has its own";
  EXPECT_EQ(packings(amx), 0);
  EXPECT_EQ(packings(Target::cpu(32, 1 << 20, 0)), 0);
}

TEST(PackedExpertWeights, TheConfigFieldIsABoolean) {
  testing::expect_user_error(
      [] {
        layer_config_from_json(R"({"model_dim": 8, "hidden_size": 16, "num_experts": 2, "pack_expert_weights": 1})");
      },
      "pack_expert_weights");
  testing::expect_user_error(
      [] {
        ModelConfig::from_json_text(
            R"({"name": "m", "model_dim": 8, "hidden_size": 16, "num_experts": 2, "pack_expert_weights": "yes"})",
            "m.json");
      },
      "pack_expert_weights");
  EXPECT_TRUE(layer_config_from_json(R"({"model_dim": 8, "hidden_size": 16, "num_experts": 2,
                                         "pack_expert_weights": true})")
                  .pack_expert_weights);
  EXPECT_TRUE(ModelConfig::from_json_text(
                  R"({"name": "m", "model_dim": 8, "hidden_size": 16, "num_experts": 2, "pack_expert_weights": true})",
                  "m.json")
                  .pack_expert_weights);
}

}  // namespace
}  // namespace switchyard
