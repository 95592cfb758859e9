// The cosine gate's kernel family (templates cpu/cosine.hpp, cuda/cosine.cuh). Parameters: dtype
// (the gate's), op (kernels::CosineOp).
#pragma once

#include <switchyard/common/cosine_args.h>

#include "jit/kernel_family.h"
#include "jit/launch_config.h"

namespace switchyard::kernels {

KernelFamily cosine_family();
KernelSpec cosine_spec(DType dtype, CosineOp op, const Target& target);

/// The launch of `op` over `items` (vectors to normalize, or elements to scale): CUDA, a thread per
/// item in blocks of 256 (one block for the scale backward's sum); CPU, up to `parallelism` blocks
/// (one for the scale backward).
LaunchConfig cosine_launch_config(const KernelSpec& spec, int64_t items, unsigned parallelism);

}  // namespace switchyard::kernels
