#include "tests/reference/layer_reference.h"

#include <algorithm>

#include "tests/reference/dispatch_reference.h"
#include "tests/reference/moe_reference.h"

namespace switchyard::reference {

Act reference_act(kernels::GemmActivation a) {
  return a == kernels::kActRelu   ? Act::kRelu
         : a == kernels::kActGelu ? Act::kGelu
         : a == kernels::kActSilu ? Act::kSilu
                                  : Act::kNone;
}

LayerParams layer_params(const MoeLayer& layer) {
  LayerParams params;
  for (const auto& name : layer.parameter_names()) {
    Tensor t = layer.parameter(name);
    params[name] = t.dtype() == DType::kFloat64
                       ? std::vector<double>(t.data_as<double>(), t.data_as<double>() + t.numel())
                       : std::vector<double>(t.data_as<float>(), t.data_as<float>() + t.numel());
  }
  return params;
}

std::vector<double> layer_forward(const MoeLayerConfig& c, const LayerParams& p, const std::vector<double>& x,
                                  int64_t s, const ForwardOptions& o, double* l_aux) {
  const int64_t m = c.model_dim, h = c.hidden_size, e = c.num_experts;
  auto logits = gemm(x, p.at("gates.0.wg.weight"), nullptr, 1, s, m, e, true, Act::kNone);
  auto r = route(logits, s, e, o.top_k, o.capacity_factor, o.normalize_gate, o.batch_prioritized_routing,
                 std::max<int64_t>(o.megablocks_size, 1));
  *l_aux = r.l_aux;
  RoutingCase rc{s, m, e, o.top_k, r.capacity, r.indices, r.locations, r.gates};
  auto slots = encode(rc, x, o.is_postscore);
  std::vector<double> y;
  if (c.expert_type == ExpertType::kFfn) {
    const std::vector<double>* b1 = c.has_fc1_bias ? &p.at("experts.batched_fc1_bias") : nullptr;
    const std::vector<double>* b2 = c.has_fc2_bias ? &p.at("experts.batched_fc2_bias") : nullptr;
    auto hid = gemm(slots, p.at("experts.batched_fc1_w"), b1, e, r.capacity, m, h, true, reference_act(c.activation));
    y = gemm(hid, p.at("experts.batched_fc2_w"), b2, e, r.capacity, h, m, false, Act::kNone);
  } else {
    auto a = gemm(slots, p.at("experts.W_fc1"), nullptr, e, r.capacity, m, h, false, Act::kSilu);
    auto b = gemm(slots, p.at("experts.W_fc2"), nullptr, e, r.capacity, m, h, false, Act::kNone);
    for (size_t i = 0; i < a.size(); ++i) a[i] *= b[i];
    y = gemm(a, p.at("experts.W_fc3"), nullptr, e, r.capacity, h, m, false, Act::kNone);
  }
  return decode(rc, y, o.is_postscore);
}

}  // namespace switchyard::reference
