// Routing from gate logits: softmax + top-k (+ normalization), locations, per-expert counts and
// gshard_loss (tutel-semantics 1.2-1.5, 3), on the logits' device.
#pragma once

#include <memory>
#include <vector>

#include "runtime/context.h"
#include "runtime/tensor.h"

namespace switchyard {

struct RoutedTokens {
  std::unique_ptr<Buffer> storage;
  Tensor scores;            // [S, E] softmax
  Tensor indices;           // int32 [k, S]
  Tensor gates;             // [k, S]
  Tensor locations;         // int32 [k, S]
  std::vector<int> counts;  // [E] on the host: true counts (never the BPR miscount of Tutel)
  double l_aux = 0;
};

/// Backward of route_tokens' gates and gshard_loss: grad_logits [S, E] (the logits' dtype) from
/// grad_gates [k, S] (the scores' dtype), the forward's scores and indices, and aux_grad [E]
/// (dL/dscores[s, e] of the aux loss, the same for every token; may be null).
void gate_backward(Context& context, const RoutedTokens& routed, const Tensor& grad_gates, const Tensor* aux_grad,
                   bool normalize_gate, const Tensor& grad_logits);

/// logits: [S, E], float32 or float64, contiguous. top_k in [1, E].
RoutedTokens route_tokens(Context& context, const Tensor& logits, int64_t top_k, bool normalize_gate,
                          bool batch_prioritized);

}  // namespace switchyard
