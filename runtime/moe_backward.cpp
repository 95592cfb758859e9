// MoeLayer::backward (tutel-semantics 2.3 and 3): combine decode -> experts -> dispatch encode ->
// gate, each step the transpose of its forward, reusing what forward saved; and the SGD step.
#include <cmath>

#include "core/error.h"
#include "jit/kernels/gemm.h"
#include "runtime/cast_ops.h"
#include "runtime/gemm_ops.h"
#include "runtime/layer_plan.h"
#include "runtime/moe_layer.h"
#include "runtime/moe_saved.h"

namespace switchyard {
namespace {

// A [R, C] tensor as the single batch [1, R, C] the GEMMs take.
Tensor one_batch(const Tensor& t) {
  return Tensor(t.data(), t.dtype(), {1, t.dim(0), t.dim(1)}, t.device());
}

}  // namespace

Tensor MoeLayer::gradient(const std::string& name) const {
  SY_CHECK(params_.count(name)) << "the layer has no parameter '" << name << "'";
  auto it = grads_.find(name);
  SY_CHECK(it != grads_.end()) << "no gradient of '" << name << "' yet: run forward (save_for_backward) and backward";
  return it->second.buffer->view(it->second.dtype, it->second.shape);
}

double MoeLayer::saved_bytes_per_token() const {
  if (!saved_ || saved_->tokens == 0) return 0;
  return static_cast<double>(saved_->bytes()) / static_cast<double>(saved_->tokens);
}

void MoeLayer::backward_experts(const Tensor& grad_slots, const Tensor& grad_dispatched, const Tensor* row_counts,
                                const ExpertTensors& weights, const ExpertTensors& grads, const Tensor& dispatched,
                                const Tensor& saved_pre, bool input_grad) {
  if (config_.custom_experts) {
    config_.custom_experts->backward(dispatched, grad_slots, grad_dispatched);
    return;
  }
  const int64_t e = grad_slots.dim(0), c = grad_slots.dim(1), h = hidden_of(weights);
  const DType dt = config_.dtype;
  const size_t hidden_bytes = static_cast<size_t>(e * c * h) * dtype_size(dt);
  const LayerPlan& plan = current_plan();
  GemmOptions data, weight;  // data gradients (A W^T), weight gradients (A^T B)
  data.row_counts = weight.row_counts = row_counts;
  data.allow_tf32 = weight.allow_tf32 = config_.allow_tf32;
  data.trans_b = weight.trans_a = true;
  data.planned = &plan.expert_out_data;
  weight.planned = &plan.expert_weight_grad;
  if (config_.expert_type == ExpertType::kFfn) {
    const Tensor pre(saved_pre.data(), dt, {e, c, h}, saved_pre.device());
    Buffer dz_space(device_, hidden_bytes);
    const Tensor dz = dz_space.view(dt, {e, c, h});
    data.activation = kernels::activation_derivative(config_.activation);  // dZ = (dY W2^T) * act'(Z), fused
    data.aux = data.activation == kernels::kActNone ? nullptr : &pre;
    batched_gemm(context_, grad_slots, weights.at("experts.batched_fc2_w"), dz, data);
    Buffer hidden_space(device_, config_.activation == kernels::kActNone ? 0 : hidden_bytes);
    Tensor hidden = pre;  // the activation is recomputed rather than saved
    if (config_.activation != kernels::kActNone) {
      hidden = hidden_space.view(dt, {e, c, h});
      activate(context_, pre, config_.activation, hidden, plan.activate);
    }
    batched_gemm(context_, hidden, grad_slots, grads.at("experts.batched_fc2_w"), weight);
    batched_gemm(context_, dz, dispatched, grads.at("experts.batched_fc1_w"), weight);
    if (config_.has_fc2_bias)
      sum_rows(context_, grad_slots, grads.at("experts.batched_fc2_bias"), row_counts, plan.expert_sum_rows);
    if (config_.has_fc1_bias)
      sum_rows(context_, dz, grads.at("experts.batched_fc1_bias"), row_counts, plan.expert_sum_rows);
    if (!input_grad) return;
    GemmOptions plain;
    plain.row_counts = row_counts;
    plain.allow_tf32 = config_.allow_tf32;
    plain.planned = &plan.expert_in_data;
    // fc1 [E, H, M] as [K, N], or its transposed copy [E, M, H] read transposed (as the plan says)
    plain.trans_b = plan.expert_in_data.shape.trans_b;
    batched_gemm(context_, dz, weights.at(plain.trans_b ? kFc1Copy : "experts.batched_fc1_w"), grad_dispatched, plain);
    return;
  }
  // SwiGLU: out = (silu(x W1) * (x W2)) W3.
  const Tensor both(saved_pre.data(), dt, {2, e, c, h}, saved_pre.device());
  const Tensor gate(both.data(), dt, {e, c, h}, both.device());
  const Tensor up(static_cast<char*>(both.data()) + hidden_bytes, dt, {e, c, h}, both.device());
  Buffer space(device_, 4 * hidden_bytes);
  auto slice = [&](int i) {
    return Tensor(static_cast<char*>(space.data()) + i * hidden_bytes, dt, {e, c, h}, both.device());
  };
  const Tensor d_product = slice(0), product = slice(1), d_gate = slice(2), d_up = slice(3);
  batched_gemm(context_, grad_slots, weights.at("experts.W_fc3"), d_product, data);
  swiglu(context_, gate, up, product, plan.activate);
  batched_gemm(context_, product, grad_slots, grads.at("experts.W_fc3"), weight);
  swiglu_backward(context_, gate, up, d_product, d_gate, d_up, plan.swiglu_backward);
  weight.planned = &plan.expert_weight_grad_t;
  batched_gemm(context_, dispatched, d_gate, grads.at("experts.W_fc1"), weight);
  batched_gemm(context_, dispatched, d_up, grads.at("experts.W_fc2"), weight);
  if (!input_grad) return;
  Buffer other_space(device_, grad_dispatched.nbytes());
  const Tensor other = other_space.view(dt, grad_dispatched.shape());
  data.planned = &plan.expert_in_data;
  batched_gemm(context_, d_gate, weights.at("experts.W_fc1"), grad_dispatched, data);
  batched_gemm(context_, d_up, weights.at("experts.W_fc2"), other, data);
  add(context_, grad_dispatched, other, grad_dispatched, plan.elementwise_add);
}

void MoeLayer::backward_gate(const Tensor& grad_gates, double l_aux_weight, const Tensor* grad_input) {
  const Saved& sv = *saved_;
  const int64_t s = sv.tokens, m = config_.model_dim, e = config_.num_experts;
  const DType g = gate_dtype(), score = sv.routed.scores.dtype();
  const LayerPlan& plan = current_plan();
  Tensor dg = grad_gates;
  std::unique_ptr<Buffer> narrow;
  if (dg.dtype() != score) {  // fp32_gate on a float64 layer: back to the scores' dtype
    narrow = std::make_unique<Buffer>(device_, static_cast<size_t>(dg.numel()) * dtype_size(score));
    dg = narrow->view(score, dg.shape());
    cast_tensor(context_, grad_gates, dg, plan.gate_grad_narrow);
  }
  Buffer logits_space(device_, static_cast<size_t>(s * e) * dtype_size(g));
  const Tensor d_logits = logits_space.view(g, {s, e});
  gate_backward(context_, sv.routed, dg, l_aux_weight, sv.options.normalize_gate, d_logits, plan.gate_backward);
  const Tensor gate_input = sv.gate_input ? sv.gate_input->view(g, {1, s, m}) : one_batch(sv.x(g, m));
  const auto gate = static_cast<size_t>(sv.options.gate_index);
  // The top gate computes dx only when asked; a cosine or custom gate's comes with its parameters'.
  const bool dx_written = grad_input != nullptr || config_.gates[gate].type != GateType::kTop;
  Buffer dx_space(device_, dx_written ? static_cast<size_t>(s * m) * dtype_size(g) : 0);
  const Tensor dx = dx_written ? dx_space.view(g, {1, s, m}) : Tensor();
  if (config_.gates[gate].type == GateType::kCosineTop) {
    cosine_backward(gate, one_batch(d_logits), gate_input, *sv.cosine_gate, dx);
  } else if (config_.gates[gate].type == GateType::kCustom) {
    config_.gates[gate].custom->backward(Tensor(gate_input.data(), g, {s, m}, dx.device()), d_logits,
                                         Tensor(dx.data(), g, {s, m}, dx.device()));
  } else {
    GemmOptions weight, data;
    weight.trans_a = true;
    weight.planned = &plan.gate_weight_grad;
    data.planned = &plan.gate_input_data;
    batched_gemm(context_, one_batch(d_logits), gate_input, one_batch(gradient(gate_param(gate, "wg.weight"))), weight);
    if (grad_input != nullptr)
      batched_gemm(context_, one_batch(d_logits), one_batch(parameter(gate_param(gate, "wg.weight"))), dx, data);
  }
  if (grad_input == nullptr) return;  // a cosine or custom gate's dx is a by-product of its parameters'
  Tensor dx_data(dx.data(), g, {s, m}, dx.device());
  std::unique_ptr<Buffer> wide;
  if (g != config_.dtype) {  // the fp32 gate's input gradient, in the data's dtype
    wide = std::make_unique<Buffer>(device_, grad_input->nbytes());
    Tensor converted = wide->view(config_.dtype, {s, m});
    cast_tensor(context_, dx_data, converted, plan.gate_input_grad_cast);
    dx_data = converted;
  }
  add(context_, *grad_input, dx_data, *grad_input, plan.elementwise_add);
}

BackwardResult MoeLayer::backward(const Tensor& grad_output, double l_aux_weight) {
  BackwardOptions options;
  options.l_aux_weight = l_aux_weight;
  return backward(grad_output, options);
}

BackwardResult MoeLayer::backward(const Tensor& grad_output, const BackwardOptions& options) {
  const double l_aux_weight = options.l_aux_weight;
  SY_CHECK(saved_) << "backward needs a forward with save_for_backward = true first (each backward uses up the "
                      "forward it differentiates)";
  const Saved& sv = *saved_;
  const int64_t s = sv.tokens, m = config_.model_dim, e = config_.num_experts;
  SY_CHECK(grad_output.shape() == std::vector<int64_t>({s, m}) && grad_output.dtype() == config_.dtype &&
           grad_output.device() == device_.ref() && grad_output.is_contiguous())
      << "grad_output is " << grad_output.describe() << "; the saved forward expects contiguous "
      << dtype_name(config_.dtype) << shape_string({s, m}) << " on " << device_.name();
  SY_CHECK(std::isfinite(l_aux_weight)) << "l_aux_weight = " << l_aux_weight << "; expected a finite number";
  SY_CHECK(l_aux_weight == 0 || sv.options.is_gshard_loss)
      << "l_aux_weight = " << l_aux_weight
      << " with load_importance_loss: its backward is not implemented; use gshard_loss or weight 0";
  // Only the gate this forward used gets a gradient; the others' read zero and SGD skips them
  // (torch leaves their .grad at None).
  const std::string used_gate = gate_param(static_cast<size_t>(sv.options.gate_index), "");
  for (const auto& [name, p] : params_) {
    if (!grads_.count(name)) {
      Param grad;
      grad.dtype = p.dtype;
      grad.shape = p.shape;
      grad.buffer = std::make_unique<Buffer>(device_, p.buffer->bytes());
      grads_[name] = std::move(grad);
    }
    if (name.rfind("gates.", 0) == 0 && name.rfind(used_gate, 0) != 0)
      device_.fill_zero(grads_.at(name).buffer->data(), grads_.at(name).buffer->bytes());
  }
  last_gate_ = sv.options.gate_index;
  plan_ = sv.plan.get();
  const LayerPlan& plan = *sv.plan;
  const int64_t c = sv.routing.capacity;
  const size_t slot_bytes = static_cast<size_t>(e * c * m) * dtype_size(config_.dtype);
  const bool post = sv.options.is_postscore;
  const Tensor* rows = sv.options.dropless_grouped ? &sv.routed.counts : nullptr;  // clamped to C by the kernels
  // The transpose of decode is encode with the gate applied where decode applied it, and back.
  // The experts' input gradient feeds dL/dx, and without is_postscore the gate's gradient too.
  const bool experts_input_grad = options.input_gradient || !post;
  const bool d_dispatched_written = experts_backward_writes_input(experts_input_grad);
  Buffer slots_space(device_, slot_bytes), dispatched_space(device_, d_dispatched_written ? slot_bytes : 0);
  const Tensor d_slots = slots_space.view(config_.dtype, {e, c, m});
  const Tensor d_dispatched = d_dispatched_written ? dispatched_space.view(config_.dtype, {e, c, m}) : Tensor();
  dispatch_encode(context_, grad_output, sv.routing, !post, d_slots, plan.encode_transpose);
  const int r = sv.options.adaptive_r;
  Buffer gates_space(device_, sv.routing.gates.nbytes());
  const Tensor d_gates = gates_space.view(sv.routing.gates.dtype(), sv.routing.gates.shape());
  if (post)
    dispatch_gate_grad(context_, sv.expert_out->view(config_.dtype, {e, c, m}), grad_output, sv.routing, d_gates,
                       plan.gate_grad);
  // The experts' part, in the layout the experts saw: the all-to-all's adjoint is its inverse.
  std::vector<std::unique_ptr<Buffer>> storage;
  const ExpertTensors grads = expert_gradients(r, storage);
  experts_backward(d_slots, d_dispatched, rows, sv.experts.weights, grads, experts_input_grad);
  scatter_expert_gradients(grads, r);
  BackwardResult result;
  if (options.input_gradient) {
    result.storage = std::make_unique<Buffer>(device_, static_cast<size_t>(s * m) * dtype_size(config_.dtype));
    result.grad_input = result.storage->view(config_.dtype, {s, m});
    combine_decode(context_, d_dispatched, sv.routing, !post, result.grad_input, plan.decode_transpose);
  }
  if (!post) dispatch_gate_grad(context_, d_dispatched, sv.x(config_.dtype, m), sv.routing, d_gates, plan.gate_grad);
  backward_gate(d_gates, l_aux_weight, options.input_gradient ? &result.grad_input : nullptr);
  saved_.reset();
  return result;
}

void MoeLayer::sgd_step(const SgdOptions& options) {
  SY_CHECK(!grads_.empty()) << "sgd_step needs the gradients of a backward first";
  const std::string used_gate = gate_param(static_cast<size_t>(last_gate_), "");
  const LayerPlan& plan = current_plan();  // the last backward's, unless a forward ran since
  for (auto& [name, p] : params_) {
    if (name.rfind("gates.", 0) == 0 && name.rfind(used_gate, 0) != 0) continue;  // a gate the step did not use
    const Tensor param = p.buffer->view(p.dtype, p.shape);
    Tensor velocity;
    if (options.momentum != 0) {
      auto [it, fresh] = velocity_.try_emplace(name);
      if (fresh) {
        it->second.dtype = p.dtype;
        it->second.shape = p.shape;
        it->second.buffer = std::make_unique<Buffer>(device_, p.buffer->bytes());
        device_.fill_zero(it->second.buffer->data(), p.buffer->bytes());
      }
      velocity = it->second.buffer->view(p.dtype, p.shape);
    }
    switchyard::sgd_step(context_, param, gradient(name), options.momentum != 0 ? &velocity : nullptr, options,
                         p.dtype == config_.dtype ? plan.sgd : plan.gate_sgd);
  }
  refresh_packed();
}

}  // namespace switchyard
