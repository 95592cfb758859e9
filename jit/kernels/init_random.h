// The parameter-initialization family: counter-based random values drawn on the parameter's
// device (templates/switchyard/common/init_args.h holds the generator). Parameters: dtype.
#pragma once

#include <switchyard/common/init_args.h>

#include <string_view>

#include "jit/kernel_family.h"
#include "jit/launch_config.h"

namespace switchyard::kernels {

KernelFamily init_random_family();
KernelSpec init_random_spec(DType dtype, const Target& target);

/// The generator seed of tensor `name` of a layer initialized with `seed`: distinct tensors draw
/// independent values, the same name and seed the same ones on every device and rank.
unsigned long long init_seed(unsigned long long seed, std::string_view name);

/// CUDA: 256-thread blocks striding over the elements, at most 8 per multiprocessor; CPU: blocks
/// of at least 16384 elements over at most `parallelism` threads.
LaunchConfig init_random_launch_config(const KernelSpec& spec, int64_t count, unsigned parallelism);

}  // namespace switchyard::kernels
