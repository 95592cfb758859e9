// A layer's plan (runtime/layer_plan.h): once prepared, a forward, backward and SGD step launch every
// kernel from the plan (no spec built, hashed or looked up, nothing loaded), for every gate type,
// expert type, dtype and routing mode; a kernel the plan does not hold for the call's shape (an
// unaligned input) is still found by lookup; and kernel_set, the union of the plans, holds every
// kernel a training step of each option combination uses.
#include "runtime/layer_plan.h"

#include <gtest/gtest.h>

#include <algorithm>

#include <random>

#include "core/half.h"
#include "jit/kernels/elementwise.h"
#include "jit/kernels/gemm.h"
#include "runtime/moe_layer.h"
#include "tests/support/test_support.h"

namespace switchyard {
namespace {

struct Case {
  std::string name;
  MoeLayerConfig config;
  ForwardOptions options;
};

MoeLayerConfig base(DType dtype) {
  MoeLayerConfig c;
  c.model_dim = 16;
  c.hidden_size = 24;
  c.num_experts = 4;
  c.dtype = dtype;
  return c;
}

std::vector<Case> cases() {
  std::vector<Case> list;
  auto add = [&](std::string name, DType dtype, auto&& edit) {
    Case c{std::move(name), base(dtype), {}};
    c.options.save_for_backward = true;
    edit(c);
    list.push_back(std::move(c));
  };
  add("ffn relu top2 padded", DType::kFloat32, [](Case&) {});
  add("ffn gelu top1 dropless grouped bpr prescore", DType::kFloat32, [](Case& c) {
    c.config.activation = kernels::kActGelu;
    c.options.top_k = 1;
    c.options.capacity_factor = -1;
    c.options.dropless_grouped = true;
    c.options.batch_prioritized_routing = true;
    c.options.is_postscore = false;
  });
  add("swiglu bf16 fp32_gate grouped", DType::kBFloat16, [](Case& c) {
    c.config.expert_type = ExpertType::kSwiglu;
    c.config.fp32_gate = true;
    c.options.capacity_factor = 0;
    c.options.dropless_grouped = true;
  });
  add("cosine float64 fp32_gate unnormalized", DType::kFloat64, [](Case& c) {
    c.config.gates = {GateConfig{.type = GateType::kCosineTop, .proj_dim = 8}};
    c.config.fp32_gate = true;
    c.options.normalize_gate = false;
  });
  add("second of two gates, evaluation", DType::kFloat32, [](Case& c) {
    c.config.gates = {GateConfig{}, GateConfig{.type = GateType::kCosineTop, .proj_dim = 8}};
    c.options.gate_index = 1;
    c.options.save_for_backward = false;
  });
  return list;
}

// Normal draws as float64, float32 and bfloat16 bits: x for a layer of any of those dtypes.
struct Inputs {
  std::vector<double> f64;
  std::vector<float> f32;
  std::vector<uint16_t> bf16;

  explicit Inputs(int64_t count) : f64(static_cast<size_t>(count)) {
    std::mt19937 rng(5);
    std::normal_distribution<double> normal;
    for (auto& v : f64) v = normal(rng);
    f32.assign(f64.begin(), f64.end());
    for (float v : f32) bf16.push_back(float_to_bf16_bits(v));
  }
  void* data(DType dtype) {
    if (dtype == DType::kFloat64) return f64.data();
    return dtype == DType::kFloat32 ? static_cast<void*>(f32.data()) : static_cast<void*>(bf16.data());
  }
};

std::vector<float> read_floats(const Tensor& t) {
  return std::vector<float>(t.data_as<float>(), t.data_as<float>() + t.numel());
}

TEST(LayerPlan, APreparedStepLaunchesFromThePlanAndLooksNothingUp) {
  Context& context = Context::global();
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    MoeLayer layer(context, context.cpu(), c.config);
    layer.init_parameters(4);
    const int64_t s = 20, m = c.config.model_dim;
    Inputs inputs(s * m);
    const Tensor x(inputs.data(c.config.dtype), c.config.dtype, {s, m});
    EXPECT_GT(layer.prepare(c.options), 5u);
    const RuntimeCounters before = context.counters();
    for (int step = 0; step < 2; ++step) {
      layer.forward(x, c.options);
      if (!c.options.save_for_backward) continue;
      layer.backward(x, 0.01);
      layer.sgd_step({.lr = 0.01, .momentum = 0.9});
    }
    EXPECT_EQ(context.counters().memory_hits, before.memory_hits) << "a kernel was looked up instead of planned";
    EXPECT_EQ(context.counters().loads, before.loads) << "a kernel was loaded that the plan did not hold";
  }
}

TEST(LayerPlan, AnInputOffThePlansAlignmentIsLookedUpAndGivesTheSameOutput) {
  Context& context = Context::global();
  MoeLayerConfig config = base(DType::kFloat32);
  MoeLayer layer(context, context.cpu(), config);
  layer.init_parameters(4);
  const int64_t s = 6, m = config.model_dim;
  std::vector<float> storage(static_cast<size_t>(s * m + 1));
  std::mt19937 rng(2);
  std::normal_distribution<float> normal;
  for (auto& v : storage) v = normal(rng);
  std::vector<float> aligned(storage.begin() + 1, storage.end());
  ForwardOptions o;
  const auto expected = read_floats(layer.forward(Tensor(aligned.data(), DType::kFloat32, {s, m}), o).output);
  const uint64_t hits = context.counters().memory_hits;
  const auto shifted = read_floats(layer.forward(Tensor(storage.data() + 1, DType::kFloat32, {s, m}), o).output);
  EXPECT_EQ(shifted, expected);
  EXPECT_GT(context.counters().memory_hits, hits) << "a view off 16 bytes should take the looked-up kernels";
}

TEST(LayerPlan, KernelSetHoldsEveryTrainingStepOfTheConfigsRanges) {
  testing::TempDir cache;
  Settings settings = Settings::from_environment();
  settings.cache_dir = cache.path();
  settings.force_compile = false;
  ModelConfig model;
  model.name = "plan";
  model.model_dim = 8;
  model.hidden_size = 12;
  model.num_experts = 3;
  model.top_k = {1, 2};
  model.is_postscore = {true, false};
  model.normalize_gate = {true, false};
  model.gates = {ModelConfig::Gate{}, ModelConfig::Gate{"cosine_top", 4}};
  model.activation = "silu";
  model.training = true;
  {
    Context warm(settings);  // what `switchyard warm` does
    for (const auto& spec : kernel_set(model, Target::cpu()).specs) warm.store().obtain(spec);
  }
  Context context(settings);  // a fresh process
  MoeLayerConfig config = base(DType::kFloat32);
  config.model_dim = model.model_dim;
  config.hidden_size = model.hidden_size;
  config.num_experts = model.num_experts;
  config.activation = kernels::kActSilu;
  config.gates = {GateConfig{}, GateConfig{.type = GateType::kCosineTop, .proj_dim = 4}};
  MoeLayer layer(context, context.cpu(), config);
  layer.init_parameters(1);
  std::vector<float> x(static_cast<size_t>(7 * model.model_dim), 0.5f);
  x[2] = -1.5f;
  const Tensor tx(x.data(), DType::kFloat32, {7, model.model_dim});
  for (int64_t gate : {0, 1})
    for (int64_t k : model.top_k)
      for (bool post : {true, false})
        for (bool normalize : {true, false})
          for (bool grouped : {false, true}) {
            ForwardOptions o;
            o.gate_index = gate;
            o.top_k = k;
            o.is_postscore = post;
            o.normalize_gate = normalize;
            o.dropless_grouped = grouped;
            o.capacity_factor = grouped ? -1 : 1;
            o.save_for_backward = true;
            layer.forward(tx, o);
            layer.backward(tx, 0.01);
            layer.sgd_step({});
          }
  EXPECT_EQ(context.counters().store.compiles, 0u) << "a training step compiled a kernel `warm` did not";
  EXPECT_GT(context.counters().store.disk_hits, 0u);
}

// A layer's description for plan_layer: its dims, expert type and one gate.
ModelConfig layer_model(int64_t model_dim, int64_t hidden, int64_t experts, const std::string& expert_type,
                        const ModelConfig::Gate& gate) {
  ModelConfig model;
  model.model_dim = model_dim;
  model.hidden_size = hidden;
  model.num_experts = experts;
  model.expert_type = expert_type;
  model.gates = {gate};
  return model;
}

TEST(LayerPlan, PlansHoldTheirGemmsShapesAndNothingForCustomParts) {
  ModelConfig model = layer_model(8, 12, 3, "custom", ModelConfig::Gate{"custom", 0});
  LayerPlanOptions o;
  o.training = true;
  LayerPlan plan;
  plan_layer(model, o, Target::cpu(), plan);
  EXPECT_EQ(plan.gate_gemm.kernel, nullptr);
  EXPECT_EQ(plan.expert_in.kernel, nullptr);
  EXPECT_EQ(plan.expert_weight_grad.kernel, nullptr);
  ASSERT_NE(plan.topk, nullptr);  // routing, dispatch and the gate's backward stay ours
  ASSERT_NE(plan.encode_transpose, nullptr);
  EXPECT_EQ(plan.topk->spec.family, "gate_topk");

  model.expert_type = "ffn";
  model.gates = {ModelConfig::Gate{}};
  LayerPlan ffn;
  plan_layer(model, o, Target::cpu(), ffn);
  ASSERT_NE(ffn.expert_in.kernel, nullptr);
  EXPECT_EQ(ffn.expert_in.shape.activation, kernels::kActNone) << "training keeps fc1's pre-activation";
  EXPECT_EQ(ffn.expert_in.kernel->spec, kernels::gemm_spec(ffn.expert_in.shape, Target::cpu()));
  ASSERT_NE(ffn.activate, nullptr);
  o.training = false;
  LayerPlan eval;
  plan_layer(model, o, Target::cpu(), eval);
  EXPECT_EQ(eval.expert_in.shape.activation, kernels::kActRelu) << "evaluation fuses the activation";
  EXPECT_EQ(eval.activate, nullptr);
  EXPECT_EQ(eval.expert_weight_grad.kernel, nullptr);
}

// A float32 layer that allows TF32, on a Hopper target: TF32 on wgmma reads B K-major only, so
// fc1's forward reads fc1 [E, H, M] as stored, fc2's forward fc2's transposed copy [E, M, H] and
// the input's data gradient fc1's copy (all trans_b), and they run on wgmma, as does fc2's data
// gradient (W2 read transposed); the weight gradients run on wgmma too, in TF32, their operands
// transposed first (the plan holds that transpose); SwiGLU reads all three forward weights
// through copies. Where wgmma takes both layouts (bfloat16), or TF32 is not allowed, or the
// target has no wgmma, fc1 is still read as stored (every family reads B [N, K]) and the rest as
// [K, N]: no copy at all. The layer keeps exactly the copies its plans read (expert_copies).
TEST(LayerPlan, Tf32OnHopperReadsFc1KMajor) {
  ModelConfig model = layer_model(256, 512, 2, "ffn", ModelConfig::Gate{});
  model.allow_tf32 = true;
  LayerPlanOptions o;
  o.dtype = DType::kFloat32;
  o.training = true;
  const Target hopper = Target::cuda(90, true);
  LayerPlan tf32;
  plan_layer(model, o, hopper, tf32);
  auto family = [](const PlannedGemm& gemm) { return gemm.kernel->spec.family; };
  EXPECT_TRUE(tf32.expert_in.shape.trans_b);
  EXPECT_EQ(family(tf32.expert_in), "gemm_wgmma");
  EXPECT_TRUE(tf32.expert_in_data.shape.trans_b);
  EXPECT_EQ(family(tf32.expert_in_data), "gemm_wgmma");
  EXPECT_EQ(family(tf32.expert_out_data), "gemm_wgmma");
  EXPECT_TRUE(tf32.expert_out.shape.trans_b);
  EXPECT_EQ(family(tf32.expert_out), "gemm_wgmma");
  EXPECT_EQ(family(tf32.expert_weight_grad), "gemm_wgmma");
  ASSERT_NE(tf32.expert_weight_grad.transpose, nullptr);
  EXPECT_EQ(tf32.expert_weight_grad.transpose->spec,
            kernels::elementwise_spec(DType::kFloat32, kernels::kEwTranspose, kernels::kActNone, hopper));
  EXPECT_EQ(tf32.expert_in.transpose, nullptr) << "forward GEMMs read their operands as stored";
  ASSERT_EQ(tf32.expert_weights.size(), 2u);
  EXPECT_EQ(tf32.expert_weights[0].copy, nullptr) << "fc1 read as stored";
  EXPECT_TRUE(ffn_input_gradient_reads_fc1_copy(256, 512, DType::kFloat32, true, hopper)) << "the input gradient's";
  EXPECT_STREQ(tf32.expert_weights[1].copy, "fc2_t");
  // SwiGLU: W1, W2 [E, M, H] and W3 [E, H, M] read through their transposed copies, on wgmma.
  model.expert_type = "swiglu";
  LayerPlan swiglu;
  plan_layer(model, o, hopper, swiglu);
  ASSERT_EQ(swiglu.expert_weights.size(), 3u);
  const char* copies[] = {"W_fc1_t", "W_fc2_t", "W_fc3_t"};
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_STREQ(swiglu.expert_weights[i].copy, copies[i]);
    EXPECT_TRUE(swiglu.expert_weights[i].shape.trans_b);
  }
  for (const PlannedGemm* gemm : {&swiglu.expert_in, &swiglu.expert_gated, &swiglu.expert_out, &swiglu.expert_in_data,
                                  &swiglu.expert_weight_grad, &swiglu.expert_weight_grad_t})
    EXPECT_EQ(family(*gemm), "gemm_wgmma") << gemm->kernel->spec.to_string();
  EXPECT_NE(swiglu.expert_weight_grad_t.transpose, nullptr);
  model.expert_type = "ffn";
  // A hidden size of 528: fc2's K ends in a partial k-block, which the Hopper kernel takes (through
  // fc2's copy); fc1's N is not whole 128-column tiles, so fc1 runs on CUDA cores, read as stored.
  model.hidden_size = 528;
  LayerPlan ragged;
  plan_layer(model, o, hopper, ragged);
  EXPECT_TRUE(ragged.expert_out.shape.trans_b);
  EXPECT_EQ(family(ragged.expert_out), "gemm_wgmma");
  EXPECT_TRUE(ragged.expert_in.shape.trans_b);
  EXPECT_EQ(family(ragged.expert_in), "gemm_simt");
  EXPECT_EQ(ragged.expert_weights[0].copy, nullptr);
  model.hidden_size = 512;

  struct Other {
    DType dtype;
    bool allow_tf32;
    Target target;
  };
  for (const Other& other : {Other{DType::kBFloat16, true, hopper}, Other{DType::kFloat32, false, hopper},
                             Other{DType::kFloat32, true, Target::cuda(80)}}) {
    SCOPED_TRACE(::testing::Message() << dtype_name(other.dtype) << " tf32 " << other.allow_tf32 << " on "
                                      << other.target.to_string());
    model.allow_tf32 = other.allow_tf32;
    o.dtype = other.dtype;
    LayerPlan plan;
    plan_layer(model, o, other.target, plan);
    EXPECT_TRUE(plan.expert_in.shape.trans_b) << "fc1 read as stored";
    EXPECT_EQ(family(plan.expert_in), other.dtype == DType::kBFloat16 ? "gemm_wgmma"
                                      : other.allow_tf32              ? "gemm_tf32"
                                                                      : "gemm_simt");
    EXPECT_FALSE(plan.expert_out.shape.trans_b);
    EXPECT_FALSE(plan.expert_in_data.shape.trans_b);
    EXPECT_FALSE(reads_b_k_major_only(plan.expert_out.shape, other.target));
    EXPECT_FALSE(ffn_input_gradient_reads_fc1_copy(model.model_dim, model.hidden_size, other.dtype, other.allow_tf32,
                                                   other.target));
    EXPECT_EQ(plan.expert_weights[0].copy, nullptr);
    EXPECT_EQ(plan.expert_weights[1].copy, nullptr);
    EXPECT_EQ(plan.expert_weight_grad.transpose, nullptr) << "weight gradients read their operands as stored";
  }
}

// A layer keeps transposed expert copies only where a GEMM reads a weight in the one layout it
// takes (TF32 on Hopper), and its plan holds the transpose that makes them only then; the top
// gate's weight [E, M] is read as stored (B [N, K]) on every target, with no copy.
TEST(LayerPlan, TransposesOnlyForTheCopiesTheLayerKeeps) {
  const ModelConfig model = layer_model(256, 512, 2, "ffn", ModelConfig::Gate{});
  const Target hopper = Target::cuda(90, true);
  struct Case {
    DType dtype;
    bool allow_tf32;
    Target target;
    std::vector<std::pair<std::string, std::string>> copies;
  };
  for (const Case& c :
       {Case{DType::kFloat32, true, hopper, {{"experts.batched_fc2_w", "fc2_t"}, {"experts.batched_fc1_w", kFc1Copy}}},
        Case{DType::kBFloat16, true, hopper, {}}, Case{DType::kFloat32, false, hopper, {}},
        Case{DType::kFloat32, true, Target::cuda(80), {}}, Case{DType::kFloat32, true, Target::cpu(), {}}}) {
    SCOPED_TRACE(::testing::Message() << dtype_name(c.dtype) << " tf32 " << c.allow_tf32 << " on "
                                      << c.target.to_string());
    EXPECT_EQ(transposed_expert_copies("ffn", 256, 512, c.dtype, c.allow_tf32, c.target), c.copies);
    ModelConfig layer = model;
    layer.allow_tf32 = c.allow_tf32;
    LayerPlanOptions o;
    o.dtype = c.dtype;  // inference: no weight gradient transposes its operands
    LayerPlan plan;
    plan_layer(layer, o, c.target, plan);
    const KernelSpec transpose = kernels::elementwise_spec(c.dtype, kernels::kEwTranspose, kernels::kActNone, c.target);
    const bool planned = std::any_of(plan.kernels().begin(), plan.kernels().end(),
                                     [&](const PlannedKernel& k) { return k.spec == transpose; });
    EXPECT_EQ(planned, !c.copies.empty());
    EXPECT_TRUE(plan.gate_gemm.shape.trans_b) << "the gate's weight read as stored";
  }
  const std::vector<std::pair<std::string, std::string>> swiglu = {
      {"experts.W_fc1", "W_fc1_t"}, {"experts.W_fc2", "W_fc2_t"}, {"experts.W_fc3", "W_fc3_t"}};
  EXPECT_EQ(transposed_expert_copies("swiglu", 256, 512, DType::kFloat32, true, hopper), swiglu);
  EXPECT_TRUE(transposed_expert_copies("swiglu", 256, 512, DType::kBFloat16, true, hopper).empty());
}

}  // namespace
}  // namespace switchyard
