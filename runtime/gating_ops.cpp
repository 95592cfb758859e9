#include "runtime/gating_ops.h"

#include <switchyard/common/gating_args.h>

#include <numeric>

#include "core/error.h"
#include "jit/kernels/gating.h"

namespace switchyard {
namespace {

// Visiting order of batch-prioritized routing: descending top score, stable (ties keep token order).
std::vector<int> priority_order(Device& device, const Tensor& top_score) {
  const int64_t s = top_score.dim(0);
  std::vector<double> keys(static_cast<size_t>(s));
  if (top_score.dtype() == DType::kFloat64) {
    device.copy_to_host(keys.data(), top_score.data(), s * 8);
  } else {
    std::vector<float> f(static_cast<size_t>(s));
    device.copy_to_host(f.data(), top_score.data(), s * 4);
    std::copy(f.begin(), f.end(), keys.begin());
  }
  std::vector<int> order(static_cast<size_t>(s));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return keys[a] > keys[b]; });
  return order;
}

}  // namespace

RoutedTokens route_tokens(Context& context, const Tensor& logits, int64_t top_k, bool normalize_gate,
                          bool batch_prioritized) {
  SY_CHECK(logits.ndim() == 2 && logits.is_contiguous() && logits.dtype() != DType::kInt32)
      << "gate logits are " << logits.describe() << "; expected contiguous floating [S, E]";
  const int64_t s = logits.dim(0), e = logits.dim(1);
  SY_CHECK(top_k >= 1 && top_k <= e) << "top_k = " << top_k << " is invalid; expected 1 to num_experts (" << e << ")";
  Device& device = context.device(logits.device());
  const DType g = kernels::score_dtype_for(logits.dtype());
  const size_t gs = dtype_size(g);
  // One allocation: scores, gates, top score, loss terms (G), then indices, locations, counts, order (int32).
  const size_t g_count = static_cast<size_t>(s * e + top_k * s + s + e);
  const size_t i_count = static_cast<size_t>(2 * top_k * s + e + s);
  RoutedTokens r;
  r.storage = std::make_unique<Buffer>(device, g_count * gs + i_count * 4);
  char* base = static_cast<char*>(r.storage->data());
  r.scores = Tensor(base, g, {s, e}, logits.device());
  r.gates = Tensor(base + s * e * gs, g, {top_k, s}, logits.device());
  Tensor top(base + (s * e + top_k * s) * gs, g, {s}, logits.device());
  void* loss = base + (s * e + top_k * s + s) * gs;
  int* ints = reinterpret_cast<int*>(base + g_count * gs);
  r.indices = Tensor(ints, DType::kInt32, {top_k, s}, logits.device());
  r.locations = Tensor(ints + top_k * s, DType::kInt32, {top_k, s}, logits.device());
  int* counts = ints + 2 * top_k * s;
  int* order = counts + e;

  kernels::GateTopkArgs topk{logits.data(),  r.scores.data(), r.indices.data_as<int>(),
                             r.gates.data(), top.data(),      static_cast<int>(s)};
  void* topk_params[] = {&topk};
  const KernelSpec topk_spec = kernels::gate_topk_spec(logits.dtype(), e, top_k, normalize_gate, device.target());
  if (s > 0)
    device.launch(context.kernel(device, topk_spec), kernels::gating_launch_config(topk_spec, s, device.parallelism()),
                  topk_params);
  bool use_order = batch_prioritized && s > 0;
  if (use_order) {
    std::vector<int> host_order = priority_order(device, top);
    device.copy_from_host(order, host_order.data(), host_order.size() * 4);
  }
  kernels::LocationsArgs loc{r.indices.data_as<const int>(),
                             use_order ? order : nullptr,
                             r.scores.data(),
                             r.locations.data_as<int>(),
                             counts,
                             loss,
                             static_cast<int>(s)};
  void* loc_params[] = {&loc};
  const KernelSpec locations_spec = kernels::route_locations_spec(g, e, top_k, device.target());
  device.launch(context.kernel(device, locations_spec), kernels::route_locations_launch_config(locations_spec, e),
                loc_params);
  r.counts.resize(static_cast<size_t>(e));
  device.copy_to_host(r.counts.data(), counts, static_cast<size_t>(e) * 4);
  // Sum the per-expert terms here, in expert order, so the loss is deterministic on every device.
  std::vector<double> terms(static_cast<size_t>(e));
  if (g == DType::kFloat64) {
    device.copy_to_host(terms.data(), loss, static_cast<size_t>(e) * 8);
  } else {
    std::vector<float> f(static_cast<size_t>(e));
    device.copy_to_host(f.data(), loss, static_cast<size_t>(e) * 4);
    std::copy(f.begin(), f.end(), terms.begin());
  }
  double sum = 0;
  for (double t : terms) sum += t;
  r.l_aux = static_cast<double>(e) * sum;
  return r;
}

void gate_backward(Context& context, const RoutedTokens& routed, const Tensor& grad_gates, const Tensor* aux_grad,
                   bool normalize_gate, const Tensor& grad_logits) {
  const int64_t s = routed.scores.dim(0), e = routed.scores.dim(1), k = routed.indices.dim(0);
  const DType g = routed.scores.dtype();
  SY_CHECK(grad_gates.shape() == std::vector<int64_t>({k, s}) && grad_gates.dtype() == g && grad_gates.is_contiguous())
      << "gate_backward gate gradient is " << grad_gates.describe() << "; expected contiguous " << dtype_name(g)
      << shape_string({k, s});
  SY_CHECK(!aux_grad || (aux_grad->shape() == std::vector<int64_t>{e} && aux_grad->dtype() == g))
      << "gate_backward aux gradient is " << aux_grad->describe() << "; expected " << dtype_name(g) << "[" << e << "]";
  SY_CHECK(grad_logits.shape() == std::vector<int64_t>({s, e}) && grad_logits.is_contiguous() &&
           kernels::score_dtype_for(grad_logits.dtype()) == g)
      << "gate_backward output is " << grad_logits.describe() << "; expected contiguous [" << s << ", " << e
      << "] of the logits' dtype";
  Device& device = context.device(routed.scores.device());
  const KernelSpec spec = kernels::gate_backward_spec(grad_logits.dtype(), e, k, normalize_gate, device.target());
  const LoadedKernel& kernel = context.kernel(device, spec);
  if (s == 0) return;
  kernels::GateBackwardArgs args{routed.scores.data(), routed.indices.data_as<const int>(),
                                 grad_gates.data(),    aux_grad ? aux_grad->data() : nullptr,
                                 grad_logits.data(),   static_cast<int>(s)};
  void* params[] = {&args};
  device.launch(kernel, kernels::gating_launch_config(spec, s, device.parallelism()), params);
}

}  // namespace switchyard
