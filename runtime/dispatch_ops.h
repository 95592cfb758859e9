// Dispatch and combine: public (switchyard/dispatch.h).
#pragma once

#include <switchyard/dispatch.h>

#include "runtime/context.h"
#include "runtime/planned_kernel.h"
#include "runtime/tensor.h"

namespace switchyard {

// The public ops with a plan's kernel (null: looked up), used where the view's alignment allows.
void dispatch_encode(Context& context, const Tensor& tokens, const Routing& routing, bool is_postscore,
                     const Tensor& out, const PlannedKernel* planned);
void combine_decode(Context& context, const Tensor& slots, const Routing& routing, bool is_postscore, const Tensor& out,
                    const PlannedKernel* planned);
void dispatch_gate_grad(Context& context, const Tensor& slots, const Tensor& other, const Routing& routing,
                        const Tensor& out, const PlannedKernel* planned);

}  // namespace switchyard
