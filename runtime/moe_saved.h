// What MoeLayer::forward keeps for backward when asked (save_for_backward): only the tensors
// the gradients read. Internal to moe_forward.cpp and moe_backward.cpp.
#pragma once

#include <memory>
#include <vector>

#include "runtime/moe_layer.h"

namespace switchyard {

struct MoeLayer::Saved {
  ForwardOptions options;
  std::shared_ptr<const LayerPlan> plan;  // the training plan of the forward, for backward
  int64_t tokens = 0;
  std::unique_ptr<Buffer> input;        // x [S, M]
  std::unique_ptr<Buffer> gate_input;   // the float32 copy of x read by an fp32 gate; null: the gate read x
  std::unique_ptr<Buffer> cosine_gate;  // a cosine gate's normalized projections, columns, logits, norms
  RoutedTokens routed;                  // scores, indices, gates, locations, counts (the grouped rows)
  std::unique_ptr<Buffer> wide_gates;   // the gates in the data's gate dtype, where that differs
  Routing routing;                      // views of the two above, as dispatch used them
  ExpertsSaved experts;                 // the experts' input, pre-activations and weights
  std::unique_ptr<Buffer> expert_out;   // [E, C, M] (only read for the post-score gate gradient)

  Tensor x(DType dtype, int64_t model_dim) const { return input->view(dtype, {tokens, model_dim}); }
  size_t bytes() const {
    size_t total = 0;
    for (const Buffer* b : {input.get(), gate_input.get(), cosine_gate.get(), routed.storage.get(), wide_gates.get(),
                            experts.input.get(), experts.pre.get(), expert_out.get()})
      total += b ? b->bytes() : 0;
    for (const auto& b : experts.gathered) total += b->bytes();
    return total;
  }
};

}  // namespace switchyard
