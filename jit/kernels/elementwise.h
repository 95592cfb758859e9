// The element-wise family: activations, the SwiGLU product and its backward, add, the SGD step
// and the row reduction of bias gradients. Parameters: dtype, op, activation.
#pragma once

#include <switchyard/common/elementwise_args.h>
#include <switchyard/common/gemm_args.h>

#include "jit/kernel_family.h"

namespace switchyard::kernels {

KernelFamily elementwise_family();
/// `activation` matters only for kEwActivate; it is kActNone in every other op's spec.
KernelSpec elementwise_spec(DType dtype, ElementwiseOp op, GemmActivation activation, const Target& target);

}  // namespace switchyard::kernels
