// Gating on the CPU (tutel-semantics 1.2, 1.3, 3): fused softmax + top-k + normalization per
// token, then the per-expert running counts that give every choice its slot, and gshard_loss.
#pragma once

#include <switchyard/common/gating_args.h>
#include <switchyard/cpu/math.hpp>
#include <switchyard/cpu/types.hpp>

namespace switchyard {
namespace cpu {

// One block = a contiguous range of tokens. Logits of type L; scores, gates and the arithmetic in
// L's compute type (float for 16-bit logits, as on CUDA).
template <typename L, int kExperts, int kTopK, bool kNormalize>
void gate_topk(const kernels::GateTopkArgs& args, unsigned block, unsigned grid) {
  static_assert(kExperts >= 1 && kTopK >= 1 && kTopK <= kExperts, "gate_topk: need 1 <= top_k <= experts");
  using G = compute_t<L>;
  const long tokens = args.tokens;
  const long begin = tokens * block / grid, end = tokens * (block + 1) / grid;
  const L* logits = static_cast<const L*>(args.logits);
  G* scores = static_cast<G*>(args.scores);
  G* gates = static_cast<G*>(args.gates);
  G* top = static_cast<G*>(args.top_score);
  for (long s = begin; s < end; ++s) {
    const L* row = logits + s * kExperts;
    G* out = scores + s * kExperts;
    G max = load(row[0]);
    for (int e = 1; e < kExperts; ++e) max = load(row[e]) > max ? load(row[e]) : max;
    G sum = G(0);
    for (int e = 0; e < kExperts; ++e) sum += (out[e] = math_exp(load(row[e]) - max));
    for (int e = 0; e < kExperts; ++e) out[e] /= sum;
    bool taken[kExperts] = {};
    G total = G(0);
    for (int j = 0; j < kTopK; ++j) {
      int best = -1;
      for (int e = 0; e < kExperts; ++e) {
        // Strictly greater: ties go to the lower expert index. NaN never wins, so a NaN row
        // falls through to the lowest untaken expert.
        if (!taken[e] && (best < 0 || out[e] > out[best])) best = e;
      }
      taken[best] = true;
      args.indices[j * tokens + s] = best;
      gates[j * tokens + s] = out[best];
      total += out[best];
      if (j == 0) top[s] = out[best];
    }
    if (kNormalize && kTopK > 1) {
      const G eps = sizeof(G) == 4 ? G(1.1920928955078125e-07) : G(2.220446049250313e-16);
      const G denom = total > eps ? total : eps;
      for (int j = 0; j < kTopK; ++j) gates[j * tokens + s] /= denom;
    }
  }
}

// Sequential over tokens (grid of one block): the running counts are a scan.
template <typename G, int kExperts, int kTopK>
void route_locations(const kernels::LocationsArgs& args, unsigned, unsigned) {
  const long tokens = args.tokens;
  int count[kExperts] = {};
  for (int j = 0; j < kTopK; ++j) {
    for (long i = 0; i < tokens; ++i) {
      const long s = args.order ? args.order[i] : i;
      const int e = args.indices[j * tokens + s];
      args.locations[j * tokens + s] = count[e]++;
    }
  }
  const G* scores = static_cast<const G*>(args.scores);
  int first[kExperts] = {};
  G mean[kExperts] = {};
  for (long s = 0; s < tokens; ++s) {
    ++first[args.indices[s]];
    for (int e = 0; e < kExperts; ++e) mean[e] += scores[s * kExperts + e];
  }
  G* terms = static_cast<G*>(args.loss_terms);
  for (int e = 0; e < kExperts; ++e) {
    args.counts[e] = count[e];
    args.top1_counts[e] = first[e];
    terms[e] = tokens > 0 ? (G(first[e]) / G(tokens)) * (mean[e] / G(tokens)) : G(0);
  }
}

// Batch-prioritized routing's order (one block): a stable bottom-up merge sort of the tokens by
// descending top score, ping-ponging between order and scratch. NaN sorts as -inf, as on CUDA.
template <typename G>
void route_priority(const kernels::PriorityArgs& args, unsigned, unsigned) {
  const long n = args.tokens;
  const G* score = static_cast<const G*>(args.top_score);
  auto key = [&](int token) { return score[token] == score[token] ? score[token] : -__builtin_inf(); };
  int* from = args.order;
  int* to = args.scratch;
  for (long i = 0; i < n; ++i) from[i] = static_cast<int>(i);
  for (long width = 1; width < n; width *= 2) {
    for (long lo = 0; lo < n; lo += 2 * width) {
      const long mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n;
      long a = lo, b = mid, out = lo;
      while (a < mid && b < hi) to[out++] = key(from[b]) > key(from[a]) ? from[b++] : from[a++];  // ties: a
      while (a < mid) to[out++] = from[a++];
      while (b < hi) to[out++] = from[b++];
    }
    int* swapped = from;
    from = to;
    to = swapped;
  }
  if (from != args.order)
    for (long i = 0; i < n; ++i) args.order[i] = from[i];
}

// Backward of gate_topk (+ the gshard_loss term) per token s, with P = scores[s]:
// dP[e] = aux[e] + the gate terms (g_j = P[i_j] / max(sum_j P[i_j], eps) when normalized:
// dP[i_j] += (dg_j - sum_l dg_l g_l) / denom, or dg_j / eps when the clamp is active), then
// dlogit[e] = P[e] (dP[e] - sum_e' P[e'] dP[e']). No [E] temporary: the chosen experts' terms
// are added after the dense part. The output has the logits' type L; the rest is L's compute type.
template <typename L, int kExperts, int kTopK, bool kNormalize>
void gate_backward(const kernels::GateBackwardArgs& args, unsigned block, unsigned grid) {
  static_assert(kExperts >= 1 && kTopK >= 1 && kTopK <= kExperts, "gate_backward: need 1 <= top_k <= experts");
  using G = compute_t<L>;
  const long tokens = args.tokens;
  const long begin = tokens * block / grid, end = tokens * (block + 1) / grid;
  // The aux term per expert, as the host would narrow it: G(scale * top1).
  G aux[kExperts];
  const bool has_aux = args.top1_counts != nullptr;
  for (int e = 0; e < kExperts; ++e) aux[e] = has_aux ? G(args.aux_scale * args.top1_counts[e]) : G(0);
  const G* dg = static_cast<const G*>(args.grad_gates);
  const G eps = sizeof(G) == 4 ? G(1.1920928955078125e-07) : G(2.220446049250313e-16);
  for (long s = begin; s < end; ++s) {
    const G* p = static_cast<const G*>(args.scores) + s * kExperts;
    L* out = static_cast<L*>(args.grad_logits) + s * kExperts;
    G total = G(0), weighted = G(0);
    for (int j = 0; j < kTopK; ++j) total += p[args.indices[j * tokens + s]];
    const bool normalized = kNormalize && kTopK > 1;
    const G denom = normalized ? (total > eps ? total : eps) : G(1);
    for (int j = 0; j < kTopK; ++j) weighted += dg[j * tokens + s] * p[args.indices[j * tokens + s]] / denom;
    const G shift = normalized && total > eps ? weighted : G(0);  // sum_l dg_l g_l
    G dot = G(0);                                                 // sum_e P[e] dP[e]
    for (int e = 0; e < kExperts; ++e) dot += has_aux ? p[e] * aux[e] : G(0);
    for (int j = 0; j < kTopK; ++j) {
      const int e = args.indices[j * tokens + s];
      dot += p[e] * (dg[j * tokens + s] - shift) / denom;
    }
    if constexpr (kIsNarrow<L>) {  // each expert's sum in float, rounded once (as on CUDA)
      for (int e = 0; e < kExperts; ++e) {
        G d = aux[e];
        for (int j = 0; j < kTopK; ++j)
          if (args.indices[j * tokens + s] == e) d += (dg[j * tokens + s] - shift) / denom;
        out[e] = store<L>(p[e] * (d - dot));
      }
    } else {
      for (int e = 0; e < kExperts; ++e) out[e] = p[e] * (aux[e] - dot);
      for (int j = 0; j < kTopK; ++j) {
        const int e = args.indices[j * tokens + s];
        out[e] += p[e] * (dg[j * tokens + s] - shift) / denom;
      }
    }
  }
}

}  // namespace cpu
}  // namespace switchyard
