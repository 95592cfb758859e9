// MoeLayerConfig::pack_expert_weights on the CPU, bfloat16 (dot products) and float32: the packed
// layer's forward has the bits of the same layer without it (both expert types, few and many
// tokens, capacity and dropless), its panels
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
MoeLayerConfig packed_config(ExpertType type, bool packed, DType dt) {
  MoeLayerConfig config = testing::layer_config(96, 200, 4, dt);
  config.expert_type = type;
  config.pack_expert_weights = packed;
  return config;
}

// Settings compiling for `cpu` (testing::packed_panels_cpu).
Settings settings_for(const testing::DotProductCpu& cpu) {
  Settings settings = Settings::from_environment();
  settings.cpu = cpu.cpu;
  return settings;
}

class PackedExpertWeightsOf : public ::testing::TestWithParam<DType> {};

std::string output(MoeLayer& layer, const Buffer& x, int64_t tokens, bool dropless) {
  ForwardOptions options;
  options.top_k = 2;
  options.capacity_factor = dropless ? 0.0 : 1.0;
  options.dropless_grouped = dropless;
  const Tensor input = x.view(layer.config().dtype, {tokens, layer.config().model_dim});
  return testing::host_bytes(layer.device(), layer.forward(input, options).output);
}

TEST_P(PackedExpertWeightsOf, ForwardHasTheBitsOfTheUnpackedLayer) {
  const DType dt = GetParam();
  const testing::DotProductCpu host = testing::packed_panels_cpu(dt);
  if (!host.usable) GTEST_SKIP() << host.why_not;
  Context context(settings_for(host));
  Device& cpu = context.cpu();
  for (ExpertType type : {ExpertType::kFfn, ExpertType::kSwiglu}) {
    MoeLayer plain(context, cpu, packed_config(type, false, dt)), packed(context, cpu, packed_config(type, true, dt));
    for (const std::string& name : plain.parameter_names())
      ASSERT_EQ(testing::host_bytes(cpu, plain.parameter(name)), testing::host_bytes(cpu, packed.parameter(name)))
          << name << ": the two layers drew different weights";
    for (int64_t tokens : {5, 16, 300})
      for (bool dropless : {false, true}) {
        SCOPED_TRACE(std::string(type == ExpertType::kFfn ? "ffn, " : "swiglu, ") + std::to_string(tokens) +
                     (dropless ? " tokens, dropless" : " tokens"));
        const Buffer x = testing::normal_input(cpu, dt, tokens, 96, static_cast<unsigned>(tokens));
        EXPECT_EQ(output(packed, x, tokens, dropless), output(plain, x, tokens, dropless));
      }
  }
}

// After each change both layers made alike, their forwards agree; weights written in place without
// parameters_updated() do not reach the packed layer's GEMMs (its panels are what they read).
TEST_P(PackedExpertWeightsOf, PanelsFollowEveryChangeOfTheWeights) {
  const DType dt = GetParam();
  const testing::DotProductCpu host = testing::packed_panels_cpu(dt);
  if (!host.usable) GTEST_SKIP() << host.why_not;
  Context context(settings_for(host));
  Device& cpu = context.cpu();
  const ExpertType type = ExpertType::kSwiglu;
  MoeLayer plain(context, cpu, packed_config(type, false, dt)), packed(context, cpu, packed_config(type, true, dt));
  const Buffer x = testing::normal_input(cpu, dt, 24, 96, 3);
  const Tensor input = x.view(dt, {24, 96});

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
  MoeLayer source(context, cpu, packed_config(type, false, dt));
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

INSTANTIATE_TEST_SUITE_P(Dtypes, PackedExpertWeightsOf, ::testing::Values(kBf16, DType::kFloat32),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

// warm's kernel set holds the packing of each forward weight where its GEMM reads panels (float32
// everywhere, bfloat16 on a CPU with AMD's dot products), and nothing of it elsewhere (bfloat16 on
// AMX or converted, float16) or without the field.
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
  const Target avx2 = Target::cpu(32, 1 << 20, 0);
  EXPECT_EQ(packings(zen4), 0);
  model.pack_expert_weights = true;
  EXPECT_EQ(packings(zen4), 4) << "a dtype's W1 and W2 share a packing (same N, K), W3 has its own";
  EXPECT_EQ(packings(amx), 2) << "float32's only";
  EXPECT_EQ(packings(avx2), 2) << "float32's only";
  model.dtypes = {kBf16, DType::kFloat16};
  EXPECT_EQ(packings(zen4), 2) << "bfloat16's only";
  EXPECT_EQ(packings(amx), 0);
  EXPECT_EQ(packings(avx2), 0);
  EXPECT_EQ(packings(Target::cuda(90)), 0);
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
