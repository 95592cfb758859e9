// The element-wise cast family. Parameters: dtype (from), to.
#pragma once

#include "jit/kernel_family.h"
#include "jit/launch_config.h"

namespace switchyard::kernels {

KernelFamily cast_family();
KernelSpec cast_spec(DType from, DType to, const Target& target);

/// The launch of a cast of `count` elements: CUDA, a thread per element in blocks of 256; CPU,
/// blocks of at least 4096 elements over at most `parallelism` threads.
LaunchConfig cast_launch_config(const KernelSpec& spec, int64_t count, unsigned parallelism);

}  // namespace switchyard::kernels
