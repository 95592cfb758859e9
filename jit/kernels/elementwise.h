// The element-wise family: activations, the SwiGLU product and its backward, add, the SGD step,
// the row reduction of bias gradients and the batched transpose. Parameters: dtype, op, activation.
#pragma once

#include <switchyard/common/elementwise_args.h>
#include <switchyard/common/gemm_args.h>

#include "jit/kernel_family.h"
#include "jit/launch_config.h"

namespace switchyard::kernels {

KernelFamily elementwise_family();
/// `activation` matters only for kEwActivate; it is kActNone in every other op's spec.
KernelSpec elementwise_spec(DType dtype, ElementwiseOp op, GemmActivation activation, const Target& target);

/// The launch of an element-wise spec writing `count` elements and reading `work` (-1: count):
/// CUDA, a thread per output element in blocks of 256; CPU, blocks of at least 8192 elements read.
LaunchConfig elementwise_launch_config(const KernelSpec& spec, long count, long work, unsigned parallelism);

/// The launch of a kEwTranspose spec over `batch` [rows, cols] matrices into [cols, padded_rows]:
/// CUDA, a block of 256 threads per 16 x 16 tile of the output; CPU, blocks of output rows.
LaunchConfig transpose_launch_config(const KernelSpec& spec, long batch, long rows, long cols, long padded_rows,
                                     unsigned parallelism);

}  // namespace switchyard::kernels
