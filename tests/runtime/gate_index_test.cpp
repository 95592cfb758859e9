// Several gates in one layer (Tutel's list of gate types, forward(gate_index=i)): each gate has
// its own parameters gates.i.*, a call routes with the one it names, switching compiles nothing
// after warm, and backward and SGD reach only the gate that was used.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "core/error.h"
#include "core/settings.h"
#include "runtime/model_config.h"
#include "runtime/moe_layer.h"
#include "runtime/safetensors.h"
#include "tests/runtime/layer_dtype_checks.h"
#include "tests/support/test_support.h"

namespace switchyard {
namespace {

MoeLayerConfig two_gate_config() {
  MoeLayerConfig c;
  c.model_dim = 16;
  c.hidden_size = 24;
  c.num_experts = 4;
  c.gates = {GateConfig{}, GateConfig{.type = GateType::kCosineTop, .proj_dim = 8, .init_t = 0.25}};
  return c;
}

std::string bytes_of(const Tensor& t) {
  return std::string(t.data_as<const char>(), t.nbytes());
}

// The single-gate layer gate `index` of `layer` makes: its gates.<index>.* as gates.0.*, the same
// experts (through a file, as a user would split a checkpoint).
std::unique_ptr<MoeLayer> single_gate_layer(const MoeLayer& layer, size_t index, const std::string& dir) {
  layer.save(dir + "/both.safetensors");
  TensorFile both = read_safetensors(dir + "/both.safetensors"), one;
  const std::string prefix = "gates." + std::to_string(index) + ".";
  for (auto& [name, t] : both) {
    if (name.rfind("gates.", 0) != 0)
      one[name] = t;
    else if (name.rfind(prefix, 0) == 0)
      one["gates.0." + name.substr(prefix.size())] = t;
  }
  write_safetensors(dir + "/one.safetensors", one);
  return MoeLayer::open(Context::global(), Context::global().cpu(), dir + "/one.safetensors");
}

TEST(GateIndex, EachGateRoutesLikeAFreshSingleGateLayer) {
  testing::TempDir dir;
  MoeLayer layer(Context::global(), Context::global().cpu(), two_gate_config());
  layer.init_parameters(11);
  EXPECT_EQ(layer.parameter("gates.1.sim_matrix").shape(), (std::vector<int64_t>{8, 4}));
  EXPECT_EQ(layer.parameter("gates.0.wg.weight").shape(), (std::vector<int64_t>{4, 16}));
  std::mt19937 rng(2);
  auto x = testing::random_normal<float>(rng, 30 * 16);
  const Tensor tx(x.data(), DType::kFloat32, {30, 16});
  for (size_t index : {0u, 1u}) {
    auto fresh = single_gate_layer(layer, index, dir.path());
    EXPECT_EQ(fresh->config().gates.at(0),
              (GateConfig{two_gate_config().gates[index].type, two_gate_config().gates[index].proj_dim}))
        << "the file alone says which gate type it holds";
    ForwardOptions o;
    o.gate_index = static_cast<int64_t>(index);
    const ForwardResult got = layer.forward(tx, o);
    o.gate_index = 0;
    const ForwardResult want = fresh->forward(tx, o);
    EXPECT_EQ(bytes_of(got.output), bytes_of(want.output)) << "gate " << index;
    EXPECT_EQ(got.l_aux(), want.l_aux()) << "gate " << index;
  }
  // The two gates route differently (else the comparison above proves nothing).
  ForwardOptions first, second;
  second.gate_index = 1;
  EXPECT_NE(bytes_of(layer.forward(tx, first).output), bytes_of(layer.forward(tx, second).output));
}

TEST(GateIndex, BackwardAndSgdReachOnlyTheGateUsed) {
  MoeLayer layer(Context::global(), Context::global().cpu(), two_gate_config());
  std::mt19937 rng(3);
  auto x = testing::random_normal<float>(rng, 20 * 16), dy = testing::random_normal<float>(rng, 20 * 16);
  const Tensor tx(x.data(), DType::kFloat32, {20, 16}), tdy(dy.data(), DType::kFloat32, {20, 16});
  for (int64_t used : {1, 0}) {
    SCOPED_TRACE("gate " + std::to_string(used));
    std::map<std::string, std::string> before;
    for (const auto& name : layer.parameter_names()) before[name] = bytes_of(layer.parameter(name));
    ForwardOptions o;
    o.gate_index = used;
    o.save_for_backward = true;
    layer.forward(tx, o);
    layer.backward(tdy, 0.1);
    SgdOptions sgd;
    sgd.lr = 0.1;
    sgd.weight_decay = 0.5;  // would move an unused gate's weights if SGD touched them
    layer.sgd_step(sgd);
    const std::string used_prefix = "gates." + std::to_string(used) + ".";
    for (const auto& name : layer.parameter_names()) {
      if (name.rfind("gates.", 0) != 0) continue;
      const bool is_used = name.rfind(used_prefix, 0) == 0;
      const std::string grad = bytes_of(layer.gradient(name));
      EXPECT_EQ(grad.find_first_not_of('\0') == std::string::npos, !is_used) << name << "'s gradient";
      EXPECT_EQ(bytes_of(layer.parameter(name)) == before[name], !is_used) << name << " after SGD";
    }
  }
}

// The same check runs on the GPU (gpu_moe_test).
TEST(GateIndex, SgdStepReachesTheGateItUsed) {
  testing::expect_sgd_step_reaches_the_gate_it_used(Context::global(), Context::global().cpu(), DType::kFloat32);
}

TEST(GateIndex, SwitchingGatesAfterWarmCompilesNothing) {
  testing::TempDir cache;
  Settings settings = Settings::from_environment();
  settings.cache_dir = cache.path();
  settings.force_compile = false;
  const ModelConfig model = ModelConfig::from_json_text(
      R"({"model_dim": 16, "hidden_size": 24, "num_experts": 4, "top_k": 2, "training": true,
          "gates": [{"type": "top"}, {"type": "cosine_top", "proj_dim": 8, "init_t": 0.25}]})",
      "inline");
  ASSERT_EQ(model.gates.size(), 2u);
  {
    Context warm(settings);  // what `switchyard warm --training` does
    for (const auto& spec : kernel_set(model, Target::cpu()).specs) warm.store().obtain(spec);
  }
  Context context(settings);
  MoeLayer layer(context, context.cpu(), two_gate_config());
  std::vector<float> x(12 * 16, 0.5f);
  for (int i = 0; i < 12 * 16; ++i) x[i] = static_cast<float>((i * 37) % 11) / 7.0f - 0.6f;
  const Tensor tx(x.data(), DType::kFloat32, {12, 16});
  for (int64_t index : {0, 1, 0, 1}) {
    ForwardOptions o;
    o.gate_index = index;
    o.save_for_backward = true;
    layer.forward(tx, o);
    layer.backward(tx, 0.01);
    layer.sgd_step(SgdOptions{});
  }
  EXPECT_EQ(context.counters().store.compiles, 0u) << "switching gates compiled a kernel the warm did not";
}

TEST(GateIndex, BadIndexesAndConfigsAreNamed) {
  MoeLayer layer(Context::global(), Context::global().cpu(), two_gate_config());
  std::vector<float> x(4 * 16, 0.25f);
  ForwardOptions o;
  o.gate_index = 2;
  try {
    layer.forward(Tensor(x.data(), DType::kFloat32, {4, 16}), o);
    ADD_FAILURE() << "gate_index 2 of 2 gates";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("gate_index = 2; the layer has 2 gates (0 to 1)"), std::string::npos)
        << e.what();
  }
  o.gate_index = -1;
  EXPECT_THROW(layer.prepare(o), UserError);
  EXPECT_EQ(forward_options_from_json(R"({"gate_index": 1})").gate_index, 1);
  const MoeLayerConfig c = layer_config_from_json(
      R"({"model_dim": 8, "hidden_size": 8, "num_experts": 2, "gates": [{"type": "top"}, {"type": "cosine_top"}]})");
  ASSERT_EQ(c.gates.size(), 2u);
  EXPECT_EQ(c.gates[1].type, GateType::kCosineTop);
  EXPECT_EQ(c.gates[1].proj_dim, 256);
  for (const auto& [json, needle] : std::vector<std::pair<std::string, std::string>>{
           {R"({"model_dim": 8, "hidden_size": 8, "num_experts": 2, "gates": []})", "non-empty list"},
           {R"({"model_dim": 8, "hidden_size": 8, "num_experts": 2, "gates": [{"type": "top", "k": 2}]})",
            "unknown field \"k\""},
           {R"({"model_dim": 8, "hidden_size": 8, "num_experts": 2, "gate_type": "top", "gates": [{}]})", "use one"}}) {
    try {
      layer_config_from_json(json);
      ADD_FAILURE() << json;
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(ModelConfig::from_json_text(
                   R"({"model_dim": 8, "hidden_size": 8, "num_experts": 2, "gates": [{"type": "linear"}]})", "inline"),
               UserError);
}

}  // namespace
}  // namespace switchyard
