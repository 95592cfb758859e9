// The element-wise cast family. Parameters: dtype (from), to.
#pragma once

#include "jit/kernel_family.h"

namespace switchyard::kernels {

KernelFamily cast_family();
KernelSpec cast_spec(DType from, DType to, const Target& target);

}  // namespace switchyard::kernels
