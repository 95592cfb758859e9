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
  void* loss_terms;    // G [E]: frac_top1(e) * mean_score(e); gshard_loss = E * their sum (host)
  int tokens;
};

// Backward of softmax + top-k + normalization (+ gshard_loss): dL/dlogits from dL/dgates.
struct GateBackwardArgs {
  const void* scores;      // G [S, E]: the forward softmax
  const int* indices;      // [k, S]
  const void* grad_gates;  // G [k, S]: dL/dg_j(s) for the gates as dispatch used them
  const void* aux_grad;    // G [E]: dL/dscores[s, e] from the aux loss, the same for every token; or null
  void* grad_logits;       // [S, E] in the logits' dtype
  int tokens;
};

}  // namespace kernels
}  // namespace switchyard
