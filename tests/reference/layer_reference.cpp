#include "tests/reference/layer_reference.h"

#include <algorithm>
#include <cmath>

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

std::vector<double> gate_logits(const MoeLayerConfig& c, const LayerParams& p, const std::vector<double>& x, int64_t s,
                                size_t gate) {
  const int64_t m = c.model_dim, e = c.num_experts, d = c.gates.at(gate).proj_dim;
  const std::string prefix = "gates." + std::to_string(gate) + ".";
  if (c.gates.at(gate).type == GateType::kTop)
    return gemm(x, p.at(prefix + "wg.weight"), nullptr, 1, s, m, e, true, Act::kNone);
  const auto& wp = p.at(prefix + "cosine_projector.weight");  // [P, M]
  const auto& bp = p.at(prefix + "cosine_projector.bias");
  const auto& sim = p.at(prefix + "sim_matrix");  // [P, E]
  const double scale = std::exp(std::min(p.at(prefix + "temperature").at(0), std::log(100.0)));
  std::vector<double> col_norm(e);
  for (int64_t j = 0; j < e; ++j) {
    for (int64_t q = 0; q < d; ++q) col_norm[j] += sim[q * e + j] * sim[q * e + j];
    col_norm[j] = std::max(std::sqrt(col_norm[j]), 1e-12);
  }
  std::vector<double> logits(s * e), proj(d);
  for (int64_t t = 0; t < s; ++t) {
    double norm = 0;
    for (int64_t q = 0; q < d; ++q) {
      proj[q] = bp[q];
      for (int64_t i = 0; i < m; ++i) proj[q] += x[t * m + i] * wp[q * m + i];
      norm += proj[q] * proj[q];
    }
    norm = std::max(std::sqrt(norm), 1e-12);
    for (int64_t j = 0; j < e; ++j) {
      double dot = 0;
      for (int64_t q = 0; q < d; ++q) dot += proj[q] / norm * (sim[q * e + j] / col_norm[j]);
      logits[t * e + j] = dot * scale;
    }
  }
  return logits;
}

std::vector<double> layer_forward(const MoeLayerConfig& c, const LayerParams& p, const std::vector<double>& x,
                                  int64_t s, const ForwardOptions& o, double* l_aux) {
  const int64_t m = c.model_dim, h = c.hidden_size, e = c.num_experts;
  auto logits = gate_logits(c, p, x, s, static_cast<size_t>(o.gate_index));
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
