#include "runtime/layer_plan.h"

#include <switchyard/dispatch.h>

#include <algorithm>
#include <functional>
#include <set>

#include "core/error.h"
#include "jit/kernel_family.h"
#include "jit/kernels/cast.h"
#include "jit/kernels/cosine.h"
#include "jit/kernels/dispatch.h"
#include "jit/kernels/elementwise.h"
#include "jit/kernels/example_loss.h"
#include "jit/kernels/gating.h"
#include "jit/kernels/init_random.h"

namespace switchyard {
namespace {

using kernels::GemmShape;

struct PlanContext {
  const ModelConfig& layer;
  const LayerPlanOptions& o;
  const Target& target;
  DType gate;  // the gate's dtype (float32 with fp32_gate)

  // An expert GEMM of the layer's dtype with its TF32 and grouped-rows settings.
  kernels::GemmShape expert_gemm(int64_t n, int64_t k) const {
    return {.dtype = o.dtype, .n = n, .k = k, .allow_tf32 = layer.allow_tf32, .grouped = o.dropless_grouped};
  }
};

// The gate's forward (gating_ops, moe_cosine_gate.cpp): its GEMMs read parameters as nn.Linear
// stores them on the CPU and the layer's transposed copies on CUDA.
void plan_gate(const PlanContext& p, LayerPlan& plan) {
  const ModelConfig& c = p.layer;
  const Target& t = p.target;
  const DType g = p.gate, score = kernels::score_dtype_for(g);
  if (g != p.o.dtype) plan.gate_input_cast = plan.add(kernels::cast_spec(p.o.dtype, g, t));
  const ModelConfig::Gate& gate = c.gates.at(p.o.gate);
  if (gate.type == "top") {
    // wg [E, M] as stored: B [N, K], which every family reads (the projector below too).
    plan.gate_gemm = plan.add_gemm({.dtype = g, .n = c.num_experts, .k = c.model_dim, .trans_b = true}, t);
  } else if (gate.type == "cosine_top") {
    plan.gate_gemm =
        plan.add_gemm({.dtype = g, .n = gate.proj_dim, .k = c.model_dim, .trans_b = true, .bias = true}, t);
    plan.cosine_normalize = plan.add(kernels::cosine_spec(g, kernels::kCosNormalize, t));
    plan.cosine_similarity = plan.add_gemm({.dtype = g, .n = c.num_experts, .k = gate.proj_dim}, t);
    plan.cosine_scale = plan.add(kernels::cosine_spec(g, kernels::kCosScale, t));
  }
  plan.topk = plan.add(kernels::gate_topk_spec(g, c.num_experts, p.o.top_k, p.o.normalize_gate, t));
  plan.priority = plan.add(kernels::route_priority_spec(score, t));
  plan.locations = plan.add(kernels::route_locations_spec(score, c.num_experts, p.o.top_k, t));
  if (score != gate_dtype_for(p.o.dtype))
    plan.widen_gates = plan.add(kernels::cast_spec(score, gate_dtype_for(p.o.dtype), t));
}

// The experts' forward (MoeLayer::run_experts). Training keeps fc1's pre-activation (ffn) or both
// projections (swiglu), so their epilogues run apart.
void plan_experts(const PlanContext& p, LayerPlan& plan) {
  const ModelConfig& c = p.layer;
  const Target& t = p.target;
  plan.expert_weights = forward_expert_weights(c.expert_type, c.model_dim, c.hidden_size, p.o.dtype, c.allow_tf32, t);
  // The shape of forward weight i's GEMM (its layout from forward_expert_weights), rows grouped as the options say.
  auto weight_gemm = [&](size_t i) {
    kernels::GemmShape shape = plan.expert_weights.at(i).shape;
    shape.grouped = p.o.dropless_grouped;
    return shape;
  };
  if (c.expert_type == "ffn") {
    const auto act = kernels::parse_activation(c.activation);
    kernels::GemmShape fc1 = weight_gemm(0);
    fc1.bias = c.has_fc1_bias;
    fc1.activation = p.o.training ? kernels::kActNone : act;
    plan.expert_in = plan.add_gemm(fc1, t);
    if (p.o.training && act != kernels::kActNone)
      plan.activate = plan.add(kernels::elementwise_spec(p.o.dtype, kernels::kEwActivate, act, t));
    kernels::GemmShape fc2 = weight_gemm(1);
    fc2.bias = c.has_fc2_bias;
    plan.expert_out = plan.add_gemm(fc2, t);
  } else if (c.expert_type == "swiglu") {
    plan.expert_in = plan.add_gemm(weight_gemm(0), t);
    kernels::GemmShape w2 = weight_gemm(1);
    w2.activation = p.o.training ? kernels::kActNone : kernels::kActSwiglu;
    plan.expert_gated = plan.add_gemm(w2, t);
    if (p.o.training)
      plan.activate = plan.add(kernels::elementwise_spec(p.o.dtype, kernels::kEwSwiglu, kernels::kActNone, t));
    plan.expert_out = plan.add_gemm(weight_gemm(2), t);
  }
}

// The packing of the experts' forward weights (MoeLayerConfig::pack_expert_weights), where their
// GEMMs read packed panels: compiled by warm, run by the layer whenever its weights change.
void plan_packing(const PlanContext& p, LayerPlan& plan) {
  if (!p.layer.pack_expert_weights) return;
  for (const ForwardExpertWeight& w : forward_expert_weights(
           p.layer.expert_type, p.layer.model_dim, p.layer.hidden_size, p.o.dtype, p.layer.allow_tf32, p.target)) {
    const KernelSpec gemm = kernels::gemm_spec(w.shape, p.target);
    if (kernels::gemm_reads_packed_b(gemm)) plan.add(kernels::gemm_pack_b_spec(gemm));
  }
}

// The experts' backward (MoeLayer::backward_experts): data gradients A W^T, weight gradients A^T B
// reduced over the rows (bounded by the counts when grouped).
void plan_experts_backward(const PlanContext& p, LayerPlan& plan) {
  const ModelConfig& c = p.layer;
  const Target& t = p.target;
  const DType d = p.o.dtype;
  const int64_t m = c.model_dim, h = c.hidden_size;
  using kernels::elementwise_spec;
  if (c.expert_type != "ffn" && c.expert_type != "swiglu") return;  // custom experts: the user's code
  const bool ffn = c.expert_type == "ffn";
  const auto act = ffn ? kernels::parse_activation(c.activation) : kernels::kActNone;
  kernels::GemmShape out_data = p.expert_gemm(h, m);  // dY W2^T (ffn: with act'(Z)) or dY W3^T
  out_data.trans_b = true;
  out_data.activation = kernels::activation_derivative(act);
  plan.expert_out_data = plan.add_gemm(out_data, t);
  if (ffn && act != kernels::kActNone) plan.activate = plan.add(elementwise_spec(d, kernels::kEwActivate, act, t));
  // Weight gradients reduce over the rows; in TF32 too where the layer allows it (as torch's
  // allow_tf32 does for every matmul): on Hopper their operands are transposed first.
  auto weight_grad = [&](int64_t n, int64_t k) {
    kernels::GemmShape shape = p.expert_gemm(n, k);
    shape.trans_a = true;
    return plan.add_gemm(shape, t);
  };
  plan.expert_weight_grad = weight_grad(m, h);
  // d(hidden) W1^T: ffn's fc1 is [H, M] (or its copy [M, H] read transposed where only that form
  // reaches the Hopper kernel), swiglu's W1 [M, H]
  kernels::GemmShape in_data = p.expert_gemm(m, h);
  in_data.trans_b = !ffn || ffn_input_gradient_reads_fc1_copy(m, h, d, c.allow_tf32, t);
  if (ffn) {
    if (c.has_fc1_bias || c.has_fc2_bias)
      plan.expert_sum_rows = plan.add(elementwise_spec(d, kernels::kEwSumRows, kernels::kActNone, t));
  } else {
    plan.swiglu_backward = plan.add(elementwise_spec(d, kernels::kEwSwigluBackward, kernels::kActNone, t));
    plan.expert_weight_grad_t = weight_grad(h, m);
  }
  plan.expert_in_data = plan.add_gemm(in_data, t);
}

// The gate's backward (MoeLayer::backward_gate, cosine_backward).
void plan_gate_backward(const PlanContext& p, LayerPlan& plan) {
  const ModelConfig& c = p.layer;
  const Target& t = p.target;
  const DType g = p.gate, score = kernels::score_dtype_for(g);
  const int64_t m = c.model_dim, e = c.num_experts;
  if (gate_dtype_for(p.o.dtype) != score)
    plan.gate_grad_narrow = plan.add(kernels::cast_spec(gate_dtype_for(p.o.dtype), score, t));
  plan.gate_backward = plan.add(kernels::gate_backward_spec(g, e, p.o.top_k, p.o.normalize_gate, t));
  const ModelConfig::Gate& gate = c.gates.at(p.o.gate);
  if (gate.type == "top") {
    plan.gate_weight_grad = plan.add_gemm({.dtype = g, .n = m, .k = e, .trans_a = true}, t);
    plan.gate_input_data = plan.add_gemm({.dtype = g, .n = m, .k = e}, t);
  } else if (gate.type == "cosine_top") {
    const int64_t proj = gate.proj_dim;
    plan.cosine_scale_backward = plan.add(kernels::cosine_spec(g, kernels::kCosScaleBackward, t));
    plan.cosine_similarity_data = plan.add_gemm({.dtype = g, .n = proj, .k = e, .trans_b = true}, t);
    plan.cosine_similarity_weight = plan.add_gemm({.dtype = g, .n = e, .k = proj, .trans_a = true}, t);
    plan.cosine_normalize_backward = plan.add(kernels::cosine_spec(g, kernels::kCosNormalizeBackward, t));
    plan.gate_weight_grad = plan.add_gemm({.dtype = g, .n = m, .k = proj, .trans_a = true}, t);
    plan.gate_sum_rows = plan.add(kernels::elementwise_spec(g, kernels::kEwSumRows, kernels::kActNone, t));
    plan.gate_input_data = plan.add_gemm({.dtype = g, .n = m, .k = proj}, t);
  }
  if (g != p.o.dtype) plan.gate_input_grad_cast = plan.add(kernels::cast_spec(g, p.o.dtype, t));
}

// What the layer launches outside forward and backward: drawing its weights, the transposed
// expert copies a TF32 layer on Hopper reads, the sharded experts' partial sums and fc2 bias scale
// (moe_parallel.cpp): planned so that `warm` covers them, looked up when used. And the SGD step.
void plan_upkeep(const PlanContext& p, LayerPlan& plan) {
  const ModelConfig& c = p.layer;
  const Target& t = p.target;
  const DType d = p.o.dtype, g = p.gate;
  using kernels::elementwise_spec;
  plan.add(kernels::init_random_spec(d, t));
  plan.add(kernels::init_random_spec(g, t));
  if (!transposed_expert_copies(c.expert_type, c.model_dim, c.hidden_size, d, c.allow_tf32, t).empty())
    plan.add(elementwise_spec(d, kernels::kEwTranspose, kernels::kActNone, t));
  if (c.expert_type == "ffn") {
    plan.add(elementwise_spec(d, kernels::kEwSumRows, kernels::kActNone, t));
    plan.add(elementwise_spec(d, kernels::kEwScale, kernels::kActNone, t));
  }
  if (!p.o.training) return;
  plan.sgd = plan.add(elementwise_spec(d, kernels::kEwSgd, kernels::kActNone, t));
  plan.gate_sgd = g == d ? plan.sgd : plan.add(elementwise_spec(g, kernels::kEwSgd, kernels::kActNone, t));
}

}  // namespace

bool reads_b_k_major_only(kernels::GemmShape shape, const Target& target) {
  shape.trans_b = true;
  const bool k_major = kernels::uses_wgmma(shape, target);
  shape.trans_b = false;
  return k_major && !kernels::uses_wgmma(shape, target);
}

bool ffn_input_gradient_reads_fc1_copy(int64_t model_dim, int64_t hidden, DType dtype, bool allow_tf32,
                                       const Target& target) {
  return reads_b_k_major_only({.dtype = dtype, .n = model_dim, .k = hidden, .allow_tf32 = allow_tf32}, target);
}

const PlannedKernel* LayerPlan::add(KernelSpec spec) {
  kernels_.push_back(PlannedKernel{std::move(spec), nullptr});
  return &kernels_.back();
}

PlannedGemm LayerPlan::add_gemm(const kernels::GemmShape& shape, const Target& target) {
  PlannedGemm gemm{shape, add(kernels::gemm_spec(shape, target))};
  if (kernels::gemm_reads_transposed_operands(gemm.kernel->spec))
    gemm.transpose = add(kernels::gemm_operand_transpose_spec(gemm.kernel->spec));
  return gemm;
}

std::vector<ForwardExpertWeight> forward_expert_weights(const std::string& expert_type, int64_t model_dim,
                                                        int64_t hidden, DType dtype, bool allow_tf32,
                                                        const Target& target) {
  const int64_t m = model_dim, h = hidden;
  // A weight stored [E, K, N]: read as stored, or through its copy where only B [N, K] reaches the Hopper kernel.
  auto stored_k_n = [&](const char* name, const char* copy, int64_t n, int64_t k) {
    kernels::GemmShape shape{.dtype = dtype, .n = n, .k = k, .allow_tf32 = allow_tf32};
    shape.trans_b = reads_b_k_major_only(shape, target);
    return ForwardExpertWeight{name, shape, shape.trans_b ? copy : nullptr};
  };
  if (expert_type == "ffn") {
    // fc1 is stored [E, H, M] (nn.Linear's [out, in]): B [N, K], which every GEMM family reads.
    const kernels::GemmShape fc1{.dtype = dtype, .n = h, .k = m, .trans_b = true, .allow_tf32 = allow_tf32};
    return {{"experts.batched_fc1_w", fc1, nullptr}, stored_k_n("experts.batched_fc2_w", "fc2_t", m, h)};
  }
  if (expert_type == "swiglu")
    return {stored_k_n("experts.W_fc1", "W_fc1_t", h, m), stored_k_n("experts.W_fc2", "W_fc2_t", h, m),
            stored_k_n("experts.W_fc3", "W_fc3_t", m, h)};
  return {};
}

std::vector<std::pair<std::string, std::string>> transposed_expert_copies(const std::string& expert_type,
                                                                          int64_t model_dim, int64_t hidden,
                                                                          DType dtype, bool allow_tf32,
                                                                          const Target& target) {
  std::vector<std::pair<std::string, std::string>> copies;
  for (const ForwardExpertWeight& w : forward_expert_weights(expert_type, model_dim, hidden, dtype, allow_tf32, target))
    if (w.copy != nullptr) copies.emplace_back(w.name, w.copy);
  if (expert_type == "ffn" && ffn_input_gradient_reads_fc1_copy(model_dim, hidden, dtype, allow_tf32, target))
    copies.emplace_back("experts.batched_fc1_w", kFc1Copy);
  return copies;
}

void LayerPlan::load(Context& context, Device& device) {
  for (auto& k : kernels_) k.loaded = &context.kernel(device, k.spec);
}

void plan_layer(const ModelConfig& layer, const LayerPlanOptions& options, const Target& target, LayerPlan& plan) {
  const PlanContext p{layer, options, target, layer.fp32_gate ? DType::kFloat32 : options.dtype};
  plan_gate(p, plan);
  plan.encode = plan.add(
      kernels::dispatch_spec(true, options.dtype, layer.model_dim, options.top_k, options.is_postscore, target));
  plan_experts(p, plan);
  plan_packing(p, plan);
  plan.decode = plan.add(
      kernels::dispatch_spec(false, options.dtype, layer.model_dim, options.top_k, options.is_postscore, target));
  if (options.training) {
    // The transpose of decode is encode with the gate applied where decode applied it, and back.
    plan.encode_transpose = plan.add(
        kernels::dispatch_spec(true, options.dtype, layer.model_dim, options.top_k, !options.is_postscore, target));
    plan.decode_transpose = plan.add(
        kernels::dispatch_spec(false, options.dtype, layer.model_dim, options.top_k, !options.is_postscore, target));
    plan.gate_grad = plan.add(kernels::gate_grad_spec(options.dtype, layer.model_dim, options.top_k, target));
    plan_experts_backward(p, plan);
    plan.elementwise_add =
        plan.add(kernels::elementwise_spec(options.dtype, kernels::kEwAdd, kernels::kActNone, target));
    plan_gate_backward(p, plan);
  }
  plan_upkeep(p, plan);
}

namespace {

bool family_supports(const char* family, DType dtype, const Target& target) {
  const KernelFamily& f = find_kernel_family(family);
  const auto& dtypes = target.is_cpu() ? f.cpu_dtypes : f.cuda_dtypes;
  return std::find(dtypes.begin(), dtypes.end(), dtype) != dtypes.end();
}

// Every plan a layer of `config` in `dtype` can make: its gates, top-k, normalization, score
// placement, padded or grouped experts, and (training configs) both evaluation and training.
void add_plans(const ModelConfig& config, DType dtype, const Target& target,
               const std::function<void(const KernelSpec&)>& add) {
  LayerPlanOptions o;
  o.dtype = dtype;
  const int modes = config.training ? 2 : 1;  // evaluation, then training
  for (o.gate = 0; o.gate < config.gates.size(); ++o.gate)
    for (int64_t k : config.top_k)
      for (bool normalize : config.normalize_gate)
        for (bool postscore : config.is_postscore)
          for (bool grouped : {false, true})
            for (int mode = 0; mode < modes; ++mode) {
              o.top_k = k;
              o.normalize_gate = normalize;
              o.is_postscore = postscore;
              o.dropless_grouped = grouped;
              o.training = mode == 1;
              LayerPlan plan;
              plan_layer(config, o, target, plan);
              for (const auto& planned : plan.kernels()) add(planned.spec);
            }
}

}  // namespace

KernelSet kernel_set(const ModelConfig& config, const Target& target) {
  KernelSet set;
  std::set<std::string> seen;
  auto add = [&](const KernelSpec& spec) {
    if (seen.insert(spec.to_string()).second) set.specs.push_back(spec);
  };
  for (DType dtype : config.dtypes) {
    if (!family_supports("dispatch_encode", dtype, target)) {
      set.skipped.push_back(std::string(dtype_name(dtype)) + " on " + target.to_string() + ": not supported by the " +
                            (target.is_cpu() ? "CPU" : "CUDA") + " templates");
      continue;
    }
    if (!family_supports("gate_topk", dtype, target)) {  // dispatch alone, for programs that route themselves
      for (int64_t k : config.top_k)
        for (bool postscore : config.is_postscore)
          for (bool encode : {true, false})
            add(kernels::dispatch_spec(encode, dtype, config.model_dim, k, postscore, target));
      continue;
    }
    add_plans(config, dtype, target, add);
    // helloworld's ExampleModel loss on the output (runtime/example_loss.h): a warm covers the main job.
    add(kernels::example_loss_spec(dtype, kernels::kLossLogits, target));
    add(kernels::example_loss_spec(dtype, kernels::kLossSoftmax, target));
    if (config.training) add(kernels::example_loss_spec(dtype, kernels::kLossGrad, target));
  }
  SY_CHECK(!set.specs.empty()) << "model '" << config.name << "' has no kernel for target " << target.to_string()
                               << ": " << (set.skipped.empty() ? "no dtype" : set.skipped.front());
  return set;
}

}  // namespace switchyard
