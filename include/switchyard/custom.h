// User code inside the layer (Tutel's custom gates and experts): a gate that maps the gate's input
// to logits, or an expert function over the dispatched block. The layer runs routing, capacity,
// dispatch, combine, the exchanges across ranks and the losses around them. Tensors are on the
// layer's device; the layer keeps the objects (shared_ptr) for its lifetime.
#pragma once

#include <switchyard/export.h>
#include <switchyard/tensor.h>

namespace switchyard {

class SWITCHYARD_API CustomGate {
 public:
  virtual ~CustomGate() = default;
  /// Logits [S, E] (the gate's dtype: float32 with fp32_gate, else the layer's) for the gate input
  /// x [S, M]; the tensor must stay valid until the next call. The layer checks its shape, dtype and
  /// device, and on the CPU that every logit is finite (UserError naming the gate otherwise).
  virtual Tensor forward(const Tensor& x) = 0;
  /// Fills dx [S, M] with dL/dx from d_logits [S, E] for the forward that read `x`, and accumulates
  /// the gate's own parameter gradients as it sees fit.
  virtual void backward(const Tensor& x, const Tensor& d_logits, const Tensor& dx) = 0;
};

class SWITCHYARD_API CustomExperts {
 public:
  virtual ~CustomExperts() = default;
  /// Fills out [E_local, C, M] from the dispatched block in [E_local, C, M] (the layer's dtype;
  /// slots that hold no token are zero and their outputs are never read). With a2a_ffn_overlap_degree
  /// d > 1 across ranks the layer calls it once per chunk of C / d slots.
  virtual void forward(const Tensor& in, const Tensor& out) = 0;
  /// Fills d_in from d_out for a forward whose input was `in` (the layer kept it), and accumulates
  /// the experts' own parameter gradients. One call per forward call, in the same order.
  virtual void backward(const Tensor& in, const Tensor& d_out, const Tensor& d_in) = 0;
};

}  // namespace switchyard
