#include "tests/reference/layer_backward_reference.h"

#include <algorithm>
#include <cmath>

#include "tests/reference/backward_reference.h"

namespace switchyard::reference {
namespace {

struct ExpertGrads {
  std::vector<double> slots;  // dL/d(dispatched rows) [E, C, M]
  std::vector<double> y;      // the experts' output [E, C, M] (postscore gates need it)
};

// Sum over the C rows of each expert: the bias gradient [E, N] of a [E, C, N] gradient.
std::vector<double> sum_rows(const std::vector<double>& g, int64_t e, int64_t c, int64_t n) {
  std::vector<double> out(e * n, 0.0);
  for (int64_t b = 0; b < e; ++b)
    for (int64_t r = 0; r < c; ++r)
      for (int64_t j = 0; j < n; ++j) out[b * n + j] += g[(b * c + r) * n + j];
  return out;
}

ExpertGrads ffn_backward(const MoeLayerConfig& cfg, const LayerParams& p, const std::vector<double>& slots, int64_t c,
                         LayerParams& grads, const std::vector<double>& dy) {
  const int64_t e = cfg.num_experts, m = cfg.model_dim, h = cfg.hidden_size;
  const auto& w1 = p.at("experts.batched_fc1_w");  // [E, H, M]
  const auto& w2 = p.at("experts.batched_fc2_w");  // [E, H, M]
  const std::vector<double>* b1 = cfg.has_fc1_bias ? &p.at("experts.batched_fc1_bias") : nullptr;
  const std::vector<double>* b2 = cfg.has_fc2_bias ? &p.at("experts.batched_fc2_bias") : nullptr;
  const Act act = reference_act(cfg.activation);
  auto pre = gemm(slots, w1, b1, e, c, m, h, true, Act::kNone);
  std::vector<double> hid(pre.size());
  for (size_t i = 0; i < pre.size(); ++i) hid[i] = activate(act, pre[i]);
  ExpertGrads out;
  out.y = gemm(hid, w2, b2, e, c, h, m, false, Act::kNone);
  grads["experts.batched_fc2_w"] = weight_grad(hid, dy, e, c, h, m, nullptr);
  if (b2) grads["experts.batched_fc2_bias"] = sum_rows(dy, e, c, m);
  auto dpre = gemm(dy, w2, nullptr, e, c, m, h, true, Act::kNone);
  for (size_t i = 0; i < dpre.size(); ++i) dpre[i] *= activate_grad(act, pre[i]);
  if (b1) grads["experts.batched_fc1_bias"] = sum_rows(dpre, e, c, h);
  grads["experts.batched_fc1_w"] = weight_grad(dpre, slots, e, c, h, m, nullptr);
  out.slots = gemm(dpre, w1, nullptr, e, c, h, m, false, Act::kNone);
  return out;
}

ExpertGrads swiglu_backward(const MoeLayerConfig& cfg, const LayerParams& p, const std::vector<double>& slots,
                            int64_t c, LayerParams& grads, const std::vector<double>& dy) {
  const int64_t e = cfg.num_experts, m = cfg.model_dim, h = cfg.hidden_size;
  const auto& w1 = p.at("experts.W_fc1");  // [E, M, H]
  const auto& w2 = p.at("experts.W_fc2");  // [E, M, H]
  const auto& w3 = p.at("experts.W_fc3");  // [E, H, M]
  auto a = gemm(slots, w1, nullptr, e, c, m, h, false, Act::kNone);
  auto b = gemm(slots, w2, nullptr, e, c, m, h, false, Act::kNone);
  std::vector<double> u(a.size());
  for (size_t i = 0; i < a.size(); ++i) u[i] = activate(Act::kSilu, a[i]) * b[i];
  ExpertGrads out;
  out.y = gemm(u, w3, nullptr, e, c, h, m, false, Act::kNone);
  grads["experts.W_fc3"] = weight_grad(u, dy, e, c, h, m, nullptr);
  auto du = gemm(dy, w3, nullptr, e, c, m, h, true, Act::kNone);
  std::vector<double> da(du.size()), db(du.size());
  for (size_t i = 0; i < du.size(); ++i) {
    da[i] = du[i] * b[i] * activate_grad(Act::kSilu, a[i]);
    db[i] = du[i] * activate(Act::kSilu, a[i]);
  }
  grads["experts.W_fc1"] = weight_grad(slots, da, e, c, m, h, nullptr);
  grads["experts.W_fc2"] = weight_grad(slots, db, e, c, m, h, nullptr);
  out.slots = gemm(da, w1, nullptr, e, c, h, m, true, Act::kNone);
  auto from_b = gemm(db, w2, nullptr, e, c, h, m, true, Act::kNone);
  for (size_t i = 0; i < out.slots.size(); ++i) out.slots[i] += from_b[i];
  return out;
}

}  // namespace

LayerGradients layer_backward(const MoeLayerConfig& cfg, const LayerParams& p, const std::vector<double>& x,
                              const std::vector<double>& r, int64_t s, const ForwardOptions& o, double aux_weight) {
  const int64_t m = cfg.model_dim, e = cfg.num_experts;
  const auto& wg = p.at("gates.0.wg.weight");  // [E, M]
  auto logits = gemm(x, wg, nullptr, 1, s, m, e, true, Act::kNone);
  Routing routing = route(logits, s, e, o.top_k, o.capacity_factor, o.normalize_gate, o.batch_prioritized_routing,
                          std::max<int64_t>(o.megablocks_size, 1));
  RoutingCase rc{s, m, e, o.top_k, routing.capacity, routing.indices, routing.locations, routing.gates};
  const int64_t c = routing.capacity;
  LayerGradients grads;
  auto slots = encode(rc, x, o.is_postscore);
  // dL/dy: each kept (token, choice) slot receives its token's output gradient, times the gate
  // when the gate scales the output (postscore).
  auto dy = encode(rc, r, !o.is_postscore);
  ExpertGrads expert = cfg.expert_type == ExpertType::kFfn ? ffn_backward(cfg, p, slots, c, grads.params, dy)
                                                           : swiglu_backward(cfg, p, slots, c, grads.params, dy);
  // Gates scale the output (postscore: dg = <y, r>) or the dispatched input (prescore: dg = <dslots, x>).
  auto dgates = o.is_postscore ? gate_grad(rc, expert.y, r) : gate_grad(rc, expert.slots, x);
  grads.input = decode(rc, expert.slots, !o.is_postscore);
  // gshard_loss = E * sum_e frac_e * mean_t(score[t, e]), frac_e held fixed: dL/dscore[t, e] = w * E * frac_e / S.
  std::vector<double> aux(e, 0.0);
  for (int64_t t = 0; t < s; ++t)
    aux[routing.indices[t]] += aux_weight * static_cast<double>(e) / (double(s) * double(s));
  auto dlogits = gate_backward(routing.scores, routing.indices, dgates, aux, s, e, o.top_k, o.normalize_gate);
  grads.params["gates.0.wg.weight"] = weight_grad(dlogits, x, 1, s, e, m, nullptr);
  auto dx_gate = gemm(dlogits, wg, nullptr, 1, s, e, m, false, Act::kNone);
  for (size_t i = 0; i < grads.input.size(); ++i) grads.input[i] += dx_gate[i];
  return grads;
}

}  // namespace switchyard::reference
