// Arguments of the gating kernels (softmax + top-k, then locations + counts + loss), shared
// verbatim by host code and templates. "G" below is the gate's compute type: float, or double
// for float64 layers. Logits may also be float16/bfloat16 on CUDA (computed in float).
#pragma once

namespace switchyard {
namespace kernels {

struct GateTopkArgs {
  const void* logits;  // [S, E] in the kernel's dtype
  void* scores;        // G [S, E]: softmax of the logits
  int* indices;        // [k, S]: choice j of token s, by descending score, ties to the lower expert
  void* gates;         // G [k, S]: the chosen scores, normalized over the k choices when asked
  void* top_score;     // G [S]: the largest score of each token (batch-prioritized routing key)
  int tokens;
};

struct LocationsArgs {
  const int* indices;  // [k, S]
  const int* order;    // [S] token visiting order (batch-prioritized routing), or null = 0..S-1
  const void* scores;  // G [S, E]
  int* locations;      // [k, S]: running count per expert, choice j after every earlier choice
  int* counts;         // [E]: (token, choice) pairs per expert, before any capacity drop
  int* top1_counts;    // [E]: tokens whose first choice is the expert (gshard_loss's backward)
  void* loss_terms;    // G [E]: frac_top1(e) * mean_score(e); gshard_loss = E * their sum
  int tokens;
};

// Batch-prioritized routing's visiting order: tokens by descending top score, ties in token
// order (a stable sort), computed where the scores are.
struct PriorityArgs {
  const void* top_score;  // G [S]
  int* order;             // [S]: order[i] = the token visited i-th
  int* scratch;           // [S]: working space (the CPU's merge sort)
  int tokens;
};

// Backward of softmax + top-k + normalization (+ gshard_loss): dL/dlogits from dL/dgates.
struct GateBackwardArgs {
  const void* scores;      // G [S, E]: the forward softmax
  const int* indices;      // [k, S]
  const void* grad_gates;  // G [k, S]: dL/dg_j(s) for the gates as dispatch used them
  // dL/dscores[s, e] of the aux loss, the same for every token: aux_scale * top1_counts[e]
  // (gshard_loss = E * sum_e top1_e / S * mean_s P[s, e], times its weight w: aux_scale =
  // w * E / S^2). Null top1_counts: no aux term.
  const int* top1_counts;  // [E], from route_locations
  double aux_scale;
  void* grad_logits;  // [S, E] in the logits' dtype
  int tokens;
};

}  // namespace kernels
}  // namespace switchyard
