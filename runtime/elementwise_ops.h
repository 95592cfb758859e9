// Element-wise ops: activations, the SwiGLU product and its backward, add, scale, the SGD step,
// the row sums that give bias gradients, and the batched transpose of weight copies. Every tensor contiguous, one
// dtype, one device; each throws UserError naming the tensor that does not fit. `planned`: a plan's
// kernel (runtime/planned_kernel.h), else looked up.
#pragma once

#include <switchyard/common/gemm_args.h>
#include <switchyard/sgd_options.h>

#include "runtime/context.h"
#include "runtime/planned_kernel.h"
#include "runtime/tensor.h"

namespace switchyard {

/// out = act(x), act relu, gelu or silu.
void activate(Context& context, const Tensor& x, kernels::GemmActivation act, const Tensor& out,
              const PlannedKernel* planned = nullptr);
/// out = silu(gate) * up.
void swiglu(Context& context, const Tensor& gate, const Tensor& up, const Tensor& out,
            const PlannedKernel* planned = nullptr);
/// Backward of swiglu: d_gate = grad * up * silu'(gate), d_up = grad * silu(gate).
void swiglu_backward(Context& context, const Tensor& gate, const Tensor& up, const Tensor& grad, const Tensor& d_gate,
                     const Tensor& d_up, const PlannedKernel* planned = nullptr);
/// out = a + b (out may be a).
void add(Context& context, const Tensor& a, const Tensor& b, const Tensor& out, const PlannedKernel* planned = nullptr);
/// out = factor * x (out may be x).
void scale(Context& context, const Tensor& x, double factor, const Tensor& out);
/// out [B, C, R] = x [B, R, C] transposed per batch (a 2-D x is one batch; out is then [C, R]).
/// out's rows may be longer than R, [B, C, P] with P > R (a GEMM's 16-byte rows): the rest are
/// zeros. With row_counts (as GemmOptions::row_counts), batch b's entries past its first
/// min(row_counts[b], R) rows of x are zeros too.
void transpose(Context& context, const Tensor& x, const Tensor& out, const Tensor* row_counts = nullptr,
               const PlannedKernel* planned = nullptr);
/// out [B, C] = sum over the first min(row_counts[b], R) (default all) rows of x [B, R, C];
/// row_counts as GemmOptions::row_counts.
void sum_rows(Context& context, const Tensor& x, const Tensor& out, const Tensor* row_counts = nullptr,
              const PlannedKernel* planned = nullptr);

/// param -= lr * v with v = momentum * v + (grad + weight_decay * param) (torch.optim.SGD without
/// dampening or Nesterov); `velocity` (same shape, starting at zero) is needed when momentum != 0.
void sgd_step(Context& context, const Tensor& param, const Tensor& grad, const Tensor* velocity,
              const SgdOptions& options, const PlannedKernel* planned = nullptr);

}  // namespace switchyard
