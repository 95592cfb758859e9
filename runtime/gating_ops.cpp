#include "runtime/gating_ops.h"

#include <switchyard/common/gating_args.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "jit/kernels/gating.h"

namespace switchyard {
std::vector<int> read_counts(const Buffer& storage, const Tensor& counts) {
  std::vector<int> host(static_cast<size_t>(counts.numel()));
  storage.device().copy_to_host(host.data(), counts.data(), host.size() * 4);
  return host;
}

double read_gshard_loss(const Buffer& storage, const Tensor& loss_terms) {
  const size_t e = static_cast<size_t>(loss_terms.numel());
  std::vector<double> terms(e);
  if (loss_terms.dtype() == DType::kFloat64) {
    storage.device().copy_to_host(terms.data(), loss_terms.data(), e * 8);
  } else {
    std::vector<float> f(e);
    storage.device().copy_to_host(f.data(), loss_terms.data(), e * 4);
    std::copy(f.begin(), f.end(), terms.begin());
  }
  double sum = 0;
  for (double t : terms) sum += t;
  return static_cast<double>(e) * sum;
}

RoutedTokens route_tokens(Context& context, const Tensor& logits, int64_t top_k, bool normalize_gate,
                          bool batch_prioritized, const RoutingKernels& planned) {
  SY_CHECK(logits.ndim() == 2 && logits.is_contiguous() && logits.dtype() != DType::kInt32)
      << "gate logits are " << logits.describe() << "; expected contiguous floating [S, E]";
  const int64_t s = logits.dim(0), e = logits.dim(1);
  SY_CHECK(top_k >= 1 && top_k <= e) << "top_k = " << top_k << " is invalid; expected 1 to num_experts (" << e << ")";
  Device& device = context.device(logits.device());
  const DType g = kernels::score_dtype_for(logits.dtype());
  const size_t gs = dtype_size(g);
  // One allocation: scores, gates, top score, loss terms (G), then indices, locations, counts,
  // top-1 counts, the BPR order and its scratch (int32).
  const size_t g_count = static_cast<size_t>(s * e + top_k * s + s + e);
  const size_t i_count = static_cast<size_t>(2 * top_k * s + 2 * e + 2 * s);
  RoutedTokens r;
  r.storage = std::make_shared<Buffer>(device, g_count * gs + i_count * 4);
  char* base = static_cast<char*>(r.storage->data());
  r.scores = Tensor(base, g, {s, e}, logits.device());
  r.gates = Tensor(base + s * e * gs, g, {top_k, s}, logits.device());
  Tensor top(base + (s * e + top_k * s) * gs, g, {s}, logits.device());
  r.loss_terms = Tensor(base + (s * e + top_k * s + s) * gs, g, {e}, logits.device());
  int* ints = reinterpret_cast<int*>(base + g_count * gs);
  r.indices = Tensor(ints, DType::kInt32, {top_k, s}, logits.device());
  r.locations = Tensor(ints + top_k * s, DType::kInt32, {top_k, s}, logits.device());
  r.counts = Tensor(ints + 2 * top_k * s, DType::kInt32, {e}, logits.device());
  r.top1_counts = Tensor(ints + 2 * top_k * s + e, DType::kInt32, {e}, logits.device());
  int* order = ints + 2 * top_k * s + 2 * e;
  int* scratch = order + s;

  kernels::GateTopkArgs topk{logits.data(),  r.scores.data(), r.indices.data_as<int>(),
                             r.gates.data(), top.data(),      static_cast<int>(s)};
  void* topk_params[] = {&topk};
  const ChosenKernel topk_kernel(context, device, planned.topk, [&] {
    return kernels::gate_topk_spec(logits.dtype(), e, top_k, normalize_gate, device.target());
  });
  if (s > 0)
    device.launch(topk_kernel.loaded(), kernels::gating_launch_config(topk_kernel.spec(), s, device.parallelism()),
                  topk_params);
  const bool use_order = batch_prioritized && s > 0;
  if (use_order) {
    kernels::PriorityArgs priority{top.data(), order, scratch, static_cast<int>(s)};
    void* priority_params[] = {&priority};
    const ChosenKernel priority_kernel(context, device, planned.priority,
                                       [&] { return kernels::route_priority_spec(g, device.target()); });
    device.launch(priority_kernel.loaded(), kernels::route_priority_launch_config(priority_kernel.spec(), s),
                  priority_params);
  }
  kernels::LocationsArgs loc{
      r.indices.data_as<const int>(), use_order ? order : nullptr,  r.scores.data(),     r.locations.data_as<int>(),
      r.counts.data_as<int>(),        r.top1_counts.data_as<int>(), r.loss_terms.data(), static_cast<int>(s)};
  void* loc_params[] = {&loc};
  const ChosenKernel locations_kernel(context, device, planned.locations,
                                      [&] { return kernels::route_locations_spec(g, e, top_k, device.target()); });
  device.launch(locations_kernel.loaded(), kernels::route_locations_launch_config(locations_kernel.spec(), e),
                loc_params);
  return r;
}

void gate_backward(Context& context, const RoutedTokens& routed, const Tensor& grad_gates, double aux_weight,
                   bool normalize_gate, const Tensor& grad_logits, const PlannedKernel* planned) {
  const int64_t s = routed.scores.dim(0), e = routed.scores.dim(1), k = routed.indices.dim(0);
  const DType g = routed.scores.dtype();
  SY_CHECK(grad_gates.shape() == std::vector<int64_t>({k, s}) && grad_gates.dtype() == g && grad_gates.is_contiguous())
      << "gate_backward gate gradient is " << grad_gates.describe() << "; expected contiguous " << dtype_name(g)
      << shape_string({k, s});
  SY_CHECK(std::isfinite(aux_weight)) << "gate_backward aux weight = " << aux_weight << "; expected a finite number";
  SY_CHECK(grad_logits.shape() == std::vector<int64_t>({s, e}) && grad_logits.is_contiguous() &&
           kernels::score_dtype_for(grad_logits.dtype()) == g)
      << "gate_backward output is " << grad_logits.describe() << "; expected contiguous [" << s << ", " << e
      << "] of the logits' dtype";
  Device& device = context.device(routed.scores.device());
  const ChosenKernel chosen(context, device, planned, [&] {
    return kernels::gate_backward_spec(grad_logits.dtype(), e, k, normalize_gate, device.target());
  });
  const KernelSpec& spec = chosen.spec();
  const LoadedKernel& kernel = chosen.loaded();
  if (s == 0) return;
  // gshard_loss = E * sum_e f_e * mean_s P[s, e], f_e = top1_e / S: dL/dP[s, e] = w * E * top1_e / S^2.
  const double aux_scale = aux_weight * static_cast<double>(e) / (static_cast<double>(s) * static_cast<double>(s));
  kernels::GateBackwardArgs args{routed.scores.data(),
                                 routed.indices.data_as<const int>(),
                                 grad_gates.data(),
                                 aux_weight != 0 ? routed.top1_counts.data_as<const int>() : nullptr,
                                 aux_scale,
                                 grad_logits.data(),
                                 static_cast<int>(s)};
  void* params[] = {&args};
  device.launch(kernel, kernels::gating_launch_config(spec, s, device.parallelism()), params);
}

}  // namespace switchyard
