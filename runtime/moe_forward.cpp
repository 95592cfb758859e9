// MoeLayer::forward: gate GEMM -> routing -> capacity -> dispatch -> experts -> combine.
#include <algorithm>
#include <cmath>

#include <cstring>
#include <set>

#include "core/error.h"
#include "core/half.h"
#include "jit/kernels/gemm.h"
#include "runtime/capacity.h"
#include "runtime/cast_ops.h"
#include "runtime/dispatch_ops.h"
#include "runtime/gating_ops.h"
#include "runtime/gemm_ops.h"
#include "runtime/layer_plan.h"
#include "runtime/losses.h"
#include "runtime/moe_layer.h"
#include "runtime/moe_saved.h"

namespace switchyard {
namespace {

// Element i of a host tensor of a floating dtype, as a double.
double host_value(const Tensor& t, int64_t i) {
  const void* data = t.data();
  switch (t.dtype()) {
    case DType::kFloat64:
      return static_cast<const double*>(data)[i];
    case DType::kFloat32:
      return static_cast<const float*>(data)[i];
    case DType::kFloat16:
      return half_bits_to_float(static_cast<const uint16_t*>(data)[i]);
    default:
      return bf16_bits_to_float(static_cast<const uint16_t*>(data)[i]);
  }
}

// The first element whose exponent bits are all ones (Inf or NaN) among n elements stored as
// `Bits`, or -1. Chunks are scanned with a branch-free test that vectorizes, and searched only
// when they hold one: every CPU forward scans its whole input.
template <typename Bits>
int64_t first_all_ones_exponent(const void* data, int64_t n, Bits exponent_mask) {
  const Bits* bits = static_cast<const Bits*>(data);
  constexpr int64_t kChunk = 4096;
  for (int64_t begin = 0; begin < n; begin += kChunk) {
    const int64_t end = std::min(n, begin + kChunk);
    bool any = false;
    for (int64_t i = begin; i < end; ++i) any |= (bits[i] & exponent_mask) == exponent_mask;
    if (!any) continue;
    for (int64_t i = begin; i < end; ++i)
      if ((bits[i] & exponent_mask) == exponent_mask) return i;
  }
  return -1;
}

// The index of the first Inf or NaN of a host tensor, or -1.
int64_t first_non_finite(const Tensor& t) {
  const int64_t n = t.numel();
  switch (t.dtype()) {
    case DType::kFloat64:
      return first_all_ones_exponent<uint64_t>(t.data(), n, 0x7ff0000000000000ull);
    case DType::kFloat32:
      return first_all_ones_exponent<uint32_t>(t.data(), n, 0x7f800000u);
    case DType::kFloat16:
      return first_all_ones_exponent<uint16_t>(t.data(), n, 0x7c00u);
    default:
      return first_all_ones_exponent<uint16_t>(t.data(), n, 0x7f80u);
  }
}

}  // namespace

double ForwardResult::l_aux() const {
  return loss_terms_.data() != nullptr ? read_gshard_loss(*routing_, loss_terms_) : host_l_aux_;
}

std::vector<int> ForwardResult::expert_counts() const {
  SY_CHECK(routing_) << "expert_counts() of a ForwardResult that no forward filled";
  return read_counts(*routing_, counts);
}

void MoeLayer::check_gate_index(int64_t gate_index) const {
  SY_CHECK(gate_index >= 0 && gate_index < static_cast<int64_t>(config_.gates.size()))
      << "gate_index = " << gate_index << "; the layer has " << config_.gates.size() << " gate"
      << (config_.gates.size() == 1 ? " (index 0)" : "s (0 to " + std::to_string(config_.gates.size() - 1) + ")");
}

void MoeLayer::check_options(const Tensor& x, const ForwardOptions& o) const {
  SY_CHECK(x.ndim() == 2 && x.dim(1) == config_.model_dim && x.is_contiguous())
      << "forward input is " << x.describe() << "; expected contiguous [tokens, " << config_.model_dim << "]";
  SY_CHECK(x.dtype() == config_.dtype && x.device() == device_.ref())
      << "forward input is " << x.describe() << "; the layer is " << dtype_name(config_.dtype) << " on "
      << device_.name();
  SY_CHECK(o.top_k >= 1 && o.top_k <= config_.num_experts)
      << "top_k = " << o.top_k << "; expected 1 to num_experts (" << config_.num_experts << ")";
  check_gate_index(o.gate_index);
  SY_CHECK(!config_.custom_experts || o.adaptive_r == 1 || group_ == nullptr || group_->size() == 1)
      << "adaptive_r = " << o.adaptive_r << " with custom experts: every rank would run every expert with "
      << "weights only the experts' owner holds; custom experts take adaptive_r = 1";
  SY_CHECK(std::isfinite(o.capacity_factor))
      << "capacity_factor = " << o.capacity_factor << "; expected a finite number";
  SY_CHECK(o.is_gshard_loss || (o.gate_noise > 0 && std::isfinite(o.gate_noise)))
      << "gate_noise = " << o.gate_noise << "; load_importance_loss (is_gshard_loss = false) needs gate_noise > 0";
  SY_CHECK(o.megablocks_size >= 0) << "megablocks_size = " << o.megablocks_size << "; expected 0 or more";
  SY_CHECK(o.overlap_degree >= 1 && o.overlap_degree <= 32)
      << "a2a_ffn_overlap_degree = " << o.overlap_degree << "; expected 1 to 32";
  // s ranks share an expert (s = 1 with whole experts): adaptive_r is 0 or a divisor of s.
  SY_CHECK(o.adaptive_r == 0 || (o.adaptive_r >= 1 && shards_ % o.adaptive_r == 0))
      << "adaptive_r = " << o.adaptive_r << " does not divide s = " << shards_
      << (shards_ == 1 ? " (experts are not sharded); valid: 0, 1" : "; valid: 0 and the divisors of s");
  if (o.check_finite && !device_.is_cuda()) {
    const int64_t bad = first_non_finite(x);
    SY_CHECK(bad < 0) << "the input holds " << host_value(x, bad) << " at token " << bad / x.dim(1) << ", element "
                      << bad % x.dim(1) << "; MoE routing needs finite inputs";
  }
}

void MoeLayer::custom_logits(size_t gate, const Tensor& input, const Tensor& logits) {
  const int64_t s = input.dim(0), e = config_.num_experts;
  const Tensor got = config_.gates[gate].custom->forward(input);
  SY_CHECK(got.shape() == std::vector<int64_t>({s, e}) && got.dtype() == gate_dtype() &&
           got.device() == device_.ref() && got.is_contiguous())
      << "custom gate " << gate << " returned " << got.describe() << "; expected contiguous "
      << dtype_name(gate_dtype()) << shape_string({s, e}) << " on " << device_.name();
  if (!device_.is_cuda()) {  // NOTE: on a GPU this would wait for the device: not checked there
    const int64_t bad = first_non_finite(got);
    SY_CHECK(bad < 0) << "custom gate " << gate << " returned the logit " << host_value(got, bad) << " at token "
                      << bad / e << ", expert " << bad % e << "; routing needs finite logits";
  }
  device_.copy_within(logits.data(), got.data(), got.nbytes());
}

Tensor MoeLayer::gate_logits(const Tensor& x, int64_t gate_index, Buffer& workspace,
                             std::unique_ptr<Buffer>& gate_input, std::unique_ptr<Buffer>* cosine_kept) {
  const auto gate = static_cast<size_t>(gate_index);
  const int64_t s = x.dim(0), m = config_.model_dim, e = config_.num_experts;
  const DType g = gate_dtype();
  Tensor logits = workspace.view(g, {1, s, e});
  Tensor input(x.data(), x.dtype(), {1, s, m}, x.device());
  if (g != x.dtype()) {  // fp32_gate: the gate reads a float32 copy of the input
    gate_input = std::make_unique<Buffer>(device_, static_cast<size_t>(s * m) * dtype_size(g));
    Tensor copy = gate_input->view(g, {1, s, m});
    cast_tensor(context_, input, copy, current_plan().gate_input_cast);
    input = copy;
  }
  if (config_.gates[gate].type == GateType::kCosineTop) {
    cosine_logits(gate, input, logits, cosine_kept);
    return Tensor(logits.data(), g, {s, e}, logits.device());
  }
  if (config_.gates[gate].type == GateType::kCustom) {
    custom_logits(gate, Tensor(input.data(), g, {s, m}, input.device()), logits);
    return Tensor(logits.data(), g, {s, e}, logits.device());
  }
  GemmOptions linear;  // the [E, M] weight as stored: B [N, K]
  linear.planned = &current_plan().gate_gemm;
  linear.trans_b = true;
  const Tensor w(parameter(gate_param(gate, "wg.weight")).data(), g, {1, e, m}, x.device());
  batched_gemm(context_, input, w, logits, linear);
  return Tensor(logits.data(), g, {s, e}, logits.device());
}

void MoeLayer::run_experts(const Tensor& dispatched, const Tensor& out, const Tensor* row_counts,
                           const ExpertTensors& weights, const Tensor* saved_pre) {
  if (config_.custom_experts) {
    config_.custom_experts->forward(dispatched, out);
    return;
  }
  const int64_t e = dispatched.dim(0), c = dispatched.dim(1), h = hidden_of(weights);
  const size_t hidden_bytes = static_cast<size_t>(e * c * h) * dtype_size(config_.dtype);
  GemmOptions fc;
  fc.row_counts = row_counts;
  fc.allow_tf32 = config_.allow_tf32;
  const LayerPlan& plan = current_plan();
  fc.planned = &plan.expert_in;
  // A weight's panels packed ahead (pack_expert_weights), which its GEMM reads instead of packing it.
  auto panels_of = [&](const char* name) -> const Tensor* {
    const auto it = weights.find(std::string(name) + kPanelsSuffix);
    return it == weights.end() ? nullptr : &it->second;
  };
  // Forward weight i of the plan (ffn: fc1, fc2; swiglu: W1, W2, W3) as its GEMM reads it: the
  // weight or its transposed copy, in the layout the plan chose, with panels where packed ahead.
  auto read_weight = [&](size_t i) -> const Tensor& {
    const ForwardExpertWeight& w = plan.expert_weights.at(i);
    fc.trans_b = w.shape.trans_b;
    fc.b_panels = panels_of(w.name);
    return weights.at(w.copy != nullptr ? w.copy : w.name);
  };
  if (config_.expert_type == ExpertType::kFfn) {
    Buffer hidden(device_, hidden_bytes);
    Tensor hid = hidden.view(config_.dtype, {e, c, h});
    Tensor b1 = config_.has_fc1_bias ? weights.at("experts.batched_fc1_bias") : Tensor();
    Tensor b2 = config_.has_fc2_bias ? weights.at("experts.batched_fc2_bias") : Tensor();
    fc.bias = config_.has_fc1_bias ? &b1 : nullptr;
    const Tensor& w1 = read_weight(0);
    if (saved_pre != nullptr) {
      // Training keeps the pre-activation for the activation's derivative; the activated
      // copy is only needed until fc2 has read it.
      const Tensor& pre = *saved_pre;
      batched_gemm(context_, dispatched, w1, pre, fc);
      if (config_.activation == kernels::kActNone)
        hid = pre;
      else
        activate(context_, pre, config_.activation, hid, plan.activate);
    } else {
      fc.activation = config_.activation;
      batched_gemm(context_, dispatched, w1, hid, fc);
    }
    fc.activation = kernels::kActNone;
    fc.bias = config_.has_fc2_bias ? &b2 : nullptr;
    fc.planned = &plan.expert_out;
    batched_gemm(context_, hid, read_weight(1), out, fc);
    return;
  }
  // SwiGLU (Tutel's llama_ffn): silu(x W1) * (x W2), then W3.
  Buffer first(device_, hidden_bytes), gated(device_, hidden_bytes);
  Tensor t1 = first.view(config_.dtype, {e, c, h}), t2 = gated.view(config_.dtype, {e, c, h});
  if (saved_pre != nullptr) {  // training keeps both projections: [0] = x W1, [1] = x W2
    const Tensor& both = *saved_pre;
    Tensor gate(both.data(), config_.dtype, {e, c, h}, both.device());
    Tensor up(static_cast<char*>(both.data()) + hidden_bytes, config_.dtype, {e, c, h}, both.device());
    batched_gemm(context_, dispatched, read_weight(0), gate, fc);
    fc.planned = &plan.expert_gated;
    batched_gemm(context_, dispatched, read_weight(1), up, fc);
    swiglu(context_, gate, up, t2, plan.activate);
  } else {
    batched_gemm(context_, dispatched, read_weight(0), t1, fc);
    fc.activation = kernels::kActSwiglu;
    fc.aux = &t1;
    fc.planned = &plan.expert_gated;
    batched_gemm(context_, dispatched, read_weight(1), t2, fc);
    fc.activation = kernels::kActNone;
    fc.aux = nullptr;
  }
  fc.planned = &plan.expert_out;
  batched_gemm(context_, t2, read_weight(2), out, fc);
}

double MoeLayer::importance_loss(const Tensor& logits, const Tensor& scores, int64_t top_k, double gate_noise) {
  // NOTE: computed on the host from [S, E] values: small next to the expert GEMMs.
  auto host = [&](const Tensor& t) {
    std::string bytes(t.nbytes(), '\0');
    device_.copy_to_host(bytes.data(), t.data(), bytes.size());
    std::vector<double> v(static_cast<size_t>(t.numel()));
    for (size_t i = 0; i < v.size(); ++i) {
      if (t.dtype() == DType::kFloat64)
        std::memcpy(&v[i], &bytes[i * 8], 8);
      else if (t.dtype() == DType::kFloat32)
        v[i] = reinterpret_cast<const float*>(bytes.data())[i];
      else {
        uint16_t h;
        std::memcpy(&h, &bytes[i * 2], 2);
        v[i] = t.dtype() == DType::kFloat16 ? half_bits_to_float(h) : bf16_bits_to_float(h);
      }
    }
    return v;
  };
  return load_importance_loss(host(scores), host(logits), logits.dim(0), logits.dim(1), top_k, gate_noise);
}

ModelConfig MoeLayer::model_config(const ForwardOptions& options) const {
  ModelConfig model;
  model.name = "layer";
  model.model_dim = config_.model_dim;
  model.hidden_size = config_.hidden_size;
  model.num_experts = config_.num_experts;
  model.top_k = {options.top_k};
  model.dtypes = {config_.dtype};
  check_gate_index(options.gate_index);
  const GateConfig& gate = config_.gates[static_cast<size_t>(options.gate_index)];
  model.gates = {{gate_type_name(gate.type), gate.proj_dim}};
  model.is_postscore = {options.is_postscore};
  model.capacity_factor = {options.capacity_factor};
  model.normalize_gate = {options.normalize_gate};
  model.expert_type = config_.custom_experts ? "custom" : config_.expert_type == ExpertType::kFfn ? "ffn" : "swiglu";
  model.activation = kernels::activation_name(config_.activation);
  model.has_fc1_bias = config_.has_fc1_bias;
  model.has_fc2_bias = config_.has_fc2_bias;
  model.fp32_gate = config_.fp32_gate;
  model.allow_tf32 = config_.allow_tf32;
  model.pack_expert_weights = config_.pack_expert_weights;
  model.training = options.save_for_backward;
  return model;
}

const std::shared_ptr<const LayerPlan>& MoeLayer::plan_for(const ForwardOptions& options) {
  SY_CHECK(options.top_k >= 1 && options.top_k <= config_.num_experts)
      << "top_k = " << options.top_k << "; expected 1 to num_experts (" << config_.num_experts << ")";
  check_gate_index(options.gate_index);
  const auto key = std::make_tuple(options.top_k, options.normalize_gate, options.is_postscore,
                                   options.save_for_backward, options.gate_index, options.dropless_grouped);
  if (auto it = plans_.find(key); it != plans_.end()) return it->second;
  LayerPlanOptions o;
  o.dtype = config_.dtype;
  o.top_k = options.top_k;
  o.normalize_gate = options.normalize_gate;
  o.is_postscore = options.is_postscore;
  o.dropless_grouped = options.dropless_grouped;
  o.training = options.save_for_backward;
  auto plan = std::make_shared<LayerPlan>();
  plan_layer(model_config(options), o, device_.target(), *plan);  // its one gate is gate_index's
  plan->load(context_, device_);
  return plans_[key] = std::move(plan);
}

const LayerPlan& MoeLayer::current_plan() const {
  static const LayerPlan kNoPlan;
  return plan_ != nullptr ? *plan_ : kNoPlan;
}

size_t MoeLayer::prepare(const ForwardOptions& options) {
  std::set<const LoadedKernel*> distinct;
  for (const auto& k : plan_for(options)->kernels()) distinct.insert(k.loaded);
  return distinct.size();
}

ForwardResult MoeLayer::forward(const Tensor& x, const ForwardOptions& options) {
  check_options(x, options);
  const std::shared_ptr<const LayerPlan>& planned = plan_for(options);
  const LayerPlan& plan = *planned;
  plan_ = &plan;
  const int64_t s = x.dim(0), m = config_.model_dim, e = config_.num_experts, k = options.top_k;
  const size_t el = dtype_size(config_.dtype);
  Buffer logits_space(device_, static_cast<size_t>(s * e) * dtype_size(gate_dtype()));
  auto saved = options.save_for_backward ? std::make_unique<Saved>() : nullptr;
  std::unique_ptr<Buffer> gate_input;
  std::unique_ptr<Buffer> cosine_kept;
  Tensor logits = gate_logits(x, options.gate_index, logits_space, gate_input, saved ? &cosine_kept : nullptr);
  RoutedTokens routed = route_tokens(context_, logits, k, options.normalize_gate, options.batch_prioritized_routing,
                                     {plan.topk, plan.priority, plan.locations});
  ForwardResult result;
  result.routing_ = routed.storage;
  result.counts = routed.counts;
  if (options.is_gshard_loss)
    result.loss_terms_ = routed.loss_terms;
  else
    result.host_l_aux_ = importance_loss(logits, routed.scores, k, options.gate_noise);
  // A positive capacity factor takes the capacity from the shapes: nothing waits for the device.
  // Dropless capacities (factor <= 0) and a group's agreement read the counts: one small copy.
  const bool in_group = group_ != nullptr && group_->size() > 1;
  std::vector<int> counts;
  if (options.capacity_factor <= 0 || in_group) counts = read_counts(*routed.storage, routed.counts);
  int64_t max_count = counts.empty() ? 0 : *std::max_element(counts.begin(), counts.end());
  int64_t capacity_tokens = s;  // a group agrees on the largest token count and expert count
  GroupCounts agreed;
  if (in_group) {
    agreed = agree_on_call(s, counts, options);
    capacity_tokens = agreed.most_tokens;
    max_count = agreed.most_count;
  }
  result.capacity = moe_capacity(capacity_tokens, e, k, options.capacity_factor, max_count,
                                 moe_alignment(shards_, options.overlap_degree, options.megablocks_size));
  const int64_t c = result.capacity;

  Routing routing{routed.indices, routed.locations, routed.gates, c, e};
  std::unique_ptr<Buffer> wide_gates;
  if (routed.gates.dtype() != gate_dtype_for(config_.dtype)) {  // fp32_gate on a float64 layer
    wide_gates =
        std::make_unique<Buffer>(device_, static_cast<size_t>(k * s) * dtype_size(gate_dtype_for(config_.dtype)));
    routing.gates = wide_gates->view(gate_dtype_for(config_.dtype), {k, s});
    cast_tensor(context_, routed.gates, routing.gates, plan.widen_gates);
  }
  auto slots = std::make_unique<Buffer>(device_, static_cast<size_t>(e * c * m) * el);
  auto expert_out = std::make_unique<Buffer>(device_, static_cast<size_t>(e * c * m) * el);
  Tensor dispatched = slots->view(config_.dtype, {e, c, m}), processed = expert_out->view(config_.dtype, {e, c, m});
  dispatch_encode(context_, x, routing, options.is_postscore, dispatched, plan.encode);
  // Grouped GEMM: each expert computes only the slots that hold tokens (its count, up to C: the
  // kernels clamp the device's counts to their rows).
  std::vector<int> source_rows;  // [W][E_local]: what each rank's tokens fill of this rank's experts
  if (options.dropless_grouped && options.adaptive_r == 1 && shards_ == 1 && !agreed.counts.empty()) {
    const int64_t first = group_->rank() * local_experts_;
    for (int64_t q = 0; q < group_->size(); ++q)
      for (int64_t i = 0; i < local_experts_; ++i)
        source_rows.push_back(static_cast<int>(std::min<int64_t>(agreed.counts[q * e + first + i], c)));
  }
  std::vector<std::unique_ptr<Buffer>> gathered;
  const ExpertTensors weights = expert_weights(options.adaptive_r, gathered);
  ExpertsSaved kept;
  experts_forward(dispatched, processed, options.dropless_grouped ? &routed.counts : nullptr, weights, options,
                  saved ? &kept : nullptr, source_rows);
  result.storage = std::make_unique<Buffer>(device_, static_cast<size_t>(s * m) * el);
  result.output = result.storage->view(config_.dtype, {s, m});
  combine_decode(context_, processed, routing, options.is_postscore, result.output, plan.decode);
  if (saved) {
    saved->options = options;
    saved->plan = planned;
    saved->tokens = s;
    saved->input = std::make_unique<Buffer>(device_, x.nbytes());
    device_.copy_within(saved->input->data(), x.data(), x.nbytes());
    saved->gate_input = std::move(gate_input);
    saved->cosine_gate = std::move(cosine_kept);
    saved->routed = std::move(routed);
    saved->wide_gates = std::move(wide_gates);
    saved->routing = routing;
    if (!kept.input) kept.input = std::move(slots);
    kept.weights = weights;  // views stay valid: the buffers move, their memory does not
    kept.gathered = std::move(gathered);
    saved->experts = std::move(kept);
    if (options.is_postscore) saved->expert_out = std::move(expert_out);
  }
  if (saved) saved_ = std::move(saved);  // a forward without saving (evaluation) keeps the last save
  return result;
}

}  // namespace switchyard
