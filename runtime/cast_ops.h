// Element-wise dtype conversion between two contiguous tensors of one shape on one device (with a
// plan's kernel where one is given, runtime/planned_kernel.h).
#pragma once

#include "runtime/context.h"
#include "runtime/planned_kernel.h"
#include "runtime/tensor.h"

namespace switchyard {

void cast_tensor(Context& context, const Tensor& input, const Tensor& output, const PlannedKernel* planned = nullptr);

}  // namespace switchyard
