// Element-wise dtype conversion between two contiguous tensors of one shape on one device.
#pragma once

#include "runtime/context.h"
#include "runtime/tensor.h"

namespace switchyard {

void cast_tensor(Context& context, const Tensor& input, const Tensor& output);

}  // namespace switchyard
