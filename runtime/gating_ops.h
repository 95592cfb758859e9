// Routing from gate logits: softmax + top-k (+ normalization), locations, per-expert counts and
// gshard_loss (tutel-semantics 1.2-1.5, 3), on the logits' device.
#pragma once

#include <memory>
#include <vector>

#include "runtime/context.h"
#include "runtime/planned_kernel.h"
#include "runtime/tensor.h"

namespace switchyard {

struct RoutedTokens {
  std::shared_ptr<Buffer> storage;  // every tensor below; shared with the forward's result
  Tensor scores;                    // [S, E] softmax
  Tensor indices;                   // int32 [k, S]
  Tensor gates;                     // [k, S]
  Tensor locations;                 // int32 [k, S]
  Tensor counts;                    // int32 [E]: true counts, before drops (never the BPR miscount of Tutel)
  Tensor top1_counts;               // int32 [E]: tokens whose first choice is the expert
  Tensor loss_terms;                // [E] of the scores' dtype: gshard_loss = E * their sum
};

/// The counts, copied to the host (waits for the device).
std::vector<int> read_counts(const Buffer& storage, const Tensor& counts);
/// gshard_loss from its per-expert terms, summed on the host in expert order so the loss is
/// the same on every device (waits for the device).
double read_gshard_loss(const Buffer& storage, const Tensor& loss_terms);

/// Backward of route_tokens' gates and gshard_loss (weighted by `aux_weight`; 0 = no aux term):
/// grad_logits [S, E] (the logits' dtype) from grad_gates [k, S] (the scores' dtype) and the
/// forward's scores, indices and top-1 counts. Reads nothing back to the host.
void gate_backward(Context& context, const RoutedTokens& routed, const Tensor& grad_gates, double aux_weight,
                   bool normalize_gate, const Tensor& grad_logits, const PlannedKernel* planned = nullptr);

/// A plan's routing kernels (null: looked up).
struct RoutingKernels {
  const PlannedKernel* topk = nullptr;
  const PlannedKernel* priority = nullptr;
  const PlannedKernel* locations = nullptr;
};

/// logits: [S, E], float32 or float64, contiguous. top_k in [1, E]. Everything stays on the
/// logits' device: no copy to the host, no wait.
RoutedTokens route_tokens(Context& context, const Tensor& logits, int64_t top_k, bool normalize_gate,
                          bool batch_prioritized, const RoutingKernels& planned = {});

}  // namespace switchyard
