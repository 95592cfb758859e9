// Gating families: gate_topk (softmax + top-k + normalize) and route_locations (slots,
// counts, gshard_loss). Parameters: dtype (the gate's compute type), experts, top_k[, normalize].
#pragma once

#include "jit/kernel_family.h"

namespace switchyard::kernels {

KernelFamily gate_topk_family();
KernelFamily route_locations_family();

KernelSpec gate_topk_spec(DType gate_dtype, int64_t experts, int64_t top_k, bool normalize, const Target& target);
KernelSpec route_locations_spec(DType gate_dtype, int64_t experts, int64_t top_k, const Target& target);

}  // namespace switchyard::kernels
