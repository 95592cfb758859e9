// The cosine_top gate (Swin-MoE's router, tutel-semantics 1.1) of MoeLayer: logits =
// normalize(rows of x Wp^T + bp) . normalize(columns of sim) * exp(min(t, log 100)), and its
// backward through the same steps in reverse. GEMMs are the gemm family's; normalization and the
// temperature scale are the cosine family's.
#include "core/error.h"
#include "jit/kernels/gating.h"
#include "runtime/cosine_ops.h"
#include "runtime/elementwise_ops.h"
#include "runtime/gemm_ops.h"
#include "runtime/layer_plan.h"
#include "runtime/moe_layer.h"

namespace switchyard {
namespace {

// What the cosine gate keeps for its backward, in one buffer: the normalized projections
// pn [S, P], the normalized similarity columns sn [P, E], the unscaled logits u [S, E] (gate
// dtype) and the norms of the projections [S] and of the columns [E] (compute dtype).
struct CosineKept {
  int64_t s, p, e;
  DType gate, compute;

  static size_t aligned(size_t bytes) { return (bytes + 63) / 64 * 64; }
  size_t pn_at() const { return 0; }
  size_t sn_at() const { return pn_at() + aligned(static_cast<size_t>(s * p) * dtype_size(gate)); }
  size_t u_at() const { return sn_at() + aligned(static_cast<size_t>(p * e) * dtype_size(gate)); }
  size_t row_norms_at() const { return u_at() + aligned(static_cast<size_t>(s * e) * dtype_size(gate)); }
  size_t col_norms_at() const { return row_norms_at() + aligned(static_cast<size_t>(s) * dtype_size(compute)); }
  size_t bytes() const { return col_norms_at() + static_cast<size_t>(e) * dtype_size(compute); }

  Tensor view(const Buffer& b, size_t at, DType dtype, std::vector<int64_t> shape) const {
    return Tensor(static_cast<char*>(b.data()) + at, dtype, std::move(shape), b.device().ref());
  }
  Tensor pn(const Buffer& b) const { return view(b, pn_at(), gate, {1, s, p}); }
  Tensor sn(const Buffer& b) const { return view(b, sn_at(), gate, {1, p, e}); }
  Tensor u(const Buffer& b) const { return view(b, u_at(), gate, {1, s, e}); }
  Tensor row_norms(const Buffer& b) const { return view(b, row_norms_at(), compute, {s}); }
  Tensor col_norms(const Buffer& b) const { return view(b, col_norms_at(), compute, {e}); }
};

CosineKept kept_layout(int64_t s, const GateConfig& gate, int64_t experts, DType dtype) {
  return {s, gate.proj_dim, experts, dtype, kernels::score_dtype_for(dtype)};
}

Tensor one_batch(const Tensor& t) {
  return Tensor(t.data(), t.dtype(), {1, t.dim(0), t.dim(1)}, t.device());
}

}  // namespace

void MoeLayer::cosine_logits(size_t gate, const Tensor& input, const Tensor& logits, std::unique_ptr<Buffer>* kept) {
  const int64_t s = input.dim(1), m = config_.model_dim, p = config_.gates[gate].proj_dim, e = config_.num_experts;
  const DType g = gate_dtype();
  const CosineKept layout = kept_layout(s, config_.gates[gate], e, g);
  const LayerPlan& plan = current_plan();
  auto space = std::make_unique<Buffer>(device_, layout.bytes());
  const Tensor pn = layout.pn(*space), sn = layout.sn(*space), u = layout.u(*space);
  // proj = x Wp^T + bp, normalized in place per token
  const Tensor bias(parameter(gate_param(gate, "cosine_projector.bias")).data(), g, {1, p}, input.device());
  GemmOptions projector;
  projector.trans_b = true;
  projector.bias = &bias;
  projector.planned = &plan.gate_gemm;
  batched_gemm(context_, input,
               Tensor(parameter(gate_param(gate, "cosine_projector.weight")).data(), g, {1, p, m}, input.device()), pn,
               projector);
  normalize_vectors(context_, pn, pn, layout.row_norms(*space), {s, p, p, 1}, plan.cosine_normalize);
  normalize_vectors(context_, parameter(gate_param(gate, "sim_matrix")), sn, layout.col_norms(*space), {e, p, 1, e},
                    plan.cosine_normalize);
  GemmOptions similarity;
  similarity.planned = &plan.cosine_similarity;
  batched_gemm(context_, pn, sn, u, similarity);
  scale_by_temperature(context_, u, parameter(gate_param(gate, "temperature")), logits, plan.cosine_scale);
  if (kept) *kept = std::move(space);
}

void MoeLayer::cosine_backward(size_t gate, const Tensor& d_logits, const Tensor& input, const Buffer& kept,
                               const Tensor& dx) {
  const int64_t s = input.dim(1), m = config_.model_dim, p = config_.gates[gate].proj_dim, e = config_.num_experts;
  const DType g = gate_dtype();
  const CosineKept layout = kept_layout(s, config_.gates[gate], e, g);
  const LayerPlan& plan = current_plan();
  const Tensor pn = layout.pn(kept), sn = layout.sn(kept);
  Buffer du_space(device_, static_cast<size_t>(s * e) * dtype_size(g));
  const Tensor du = du_space.view(g, {1, s, e});
  scale_by_temperature_backward(context_, layout.u(kept), d_logits, parameter(gate_param(gate, "temperature")), du,
                                gradient(gate_param(gate, "temperature")), plan.cosine_scale_backward);
  Buffer d_pn_space(device_, static_cast<size_t>(s * p) * dtype_size(g)),
      d_sn_space(device_, static_cast<size_t>(p * e) * dtype_size(g));
  const Tensor d_pn = d_pn_space.view(g, {1, s, p}), d_sn = d_sn_space.view(g, {1, p, e});
  GemmOptions data, weight;
  data.trans_b = true;
  data.planned = &plan.cosine_similarity_data;
  weight.trans_a = true;
  weight.planned = &plan.cosine_similarity_weight;
  batched_gemm(context_, du, Tensor(sn.data(), g, {1, p, e}, sn.device()), d_pn, data);  // du sn^T
  batched_gemm(context_, pn, du, d_sn, weight);                                          // pn^T du
  normalize_vectors_backward(context_, pn, d_pn, layout.row_norms(kept), d_pn, {s, p, p, 1},
                             plan.cosine_normalize_backward);  // now d(proj)
  normalize_vectors_backward(context_, sn, d_sn, layout.col_norms(kept), gradient(gate_param(gate, "sim_matrix")),
                             {e, p, 1, e}, plan.cosine_normalize_backward);
  weight.planned = &plan.gate_weight_grad;
  batched_gemm(context_, d_pn, input, one_batch(gradient(gate_param(gate, "cosine_projector.weight"))), weight);
  sum_rows(context_, d_pn, Tensor(gradient(gate_param(gate, "cosine_projector.bias")).data(), g, {1, p}, dx.device()),
           nullptr, plan.gate_sum_rows);
  GemmOptions input_data;
  input_data.planned = &plan.gate_input_data;
  batched_gemm(context_, d_pn,
               Tensor(parameter(gate_param(gate, "cosine_projector.weight")).data(), g, {1, p, m}, dx.device()), dx,
               input_data);
}

}  // namespace switchyard
