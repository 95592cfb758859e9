// What MoeLayer::forward keeps for backward when asked (save_for_backward): only the tensors
// the gradients read. Internal to moe_forward.cpp and moe_backward.cpp.
#pragma once

#include <memory>
#include <vector>

#include "runtime/moe_layer.h"

namespace switchyard {

struct MoeLayer::Saved {
  ForwardOptions options;
  int64_t tokens = 0;
  std::unique_ptr<Buffer> input;       // x [S, M]
  std::unique_ptr<Buffer> gate_input;  // the float32 copy of x read by an fp32 gate; null: the gate read x
  RoutedTokens routed;                 // scores, indices, gates, locations, counts
  std::unique_ptr<Buffer> wide_gates;  // the gates in the data's gate dtype, where that differs
  Routing routing;                     // views of the two above, as dispatch used them
  std::vector<int> used;               // slots holding tokens per expert (the grouped GEMMs' rows)
  // What the experts read, in `chunks` blocks of expert_shape: [E, C, M] (one block), or after
  // the all-to-all d chunks of [E_local, W * C / d, M] (see MoeLayer::experts_forward).
  std::unique_ptr<Buffer> dispatched;
  std::vector<int64_t> expert_shape;
  int64_t chunks = 1;
  std::vector<int> source_rows;  // dropless grouped in a group: [W][E_local] (experts_forward)
  std::unique_ptr<Buffer>
      pre;  // per chunk, FFN: fc1's pre-activation [E_x, R, H]; SwiGLU: both projections [2, E_x, R, H]
  std::unique_ptr<Buffer> expert_out;  // [E, C, M] (only read for the post-score gate gradient)
  // The expert weights as the experts ran: views of the parameters, or of copies gathered from
  // the group (adaptive_r = 0, shared experts) that backward reuses instead of gathering again.
  ExpertTensors expert_weights;
  std::vector<std::unique_ptr<Buffer>> gathered_weights;

  Tensor x(DType dtype, int64_t model_dim) const { return input->view(dtype, {tokens, model_dim}); }
  size_t bytes() const {
    size_t total = 0;
    for (const Buffer* b : {input.get(), gate_input.get(), routed.storage.get(), wide_gates.get(), dispatched.get(),
                            pre.get(), expert_out.get()})
      total += b ? b->bytes() : 0;
    for (const auto& b : gathered_weights) total += b->bytes();
    return total;
  }
};

}  // namespace switchyard
