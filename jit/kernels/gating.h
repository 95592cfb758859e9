// Gating families: gate_topk (softmax + top-k + normalize), route_priority (batch-prioritized
// order) and route_locations (slots, counts, gshard_loss terms). Parameters: dtype (the gate's compute type), experts,
// top_k[, normalize].
#pragma once

#include "jit/kernel_family.h"
#include "jit/launch_config.h"

namespace switchyard::kernels {

KernelFamily gate_topk_family();
KernelFamily route_locations_family();
/// Batch-prioritized routing's token order (a stable sort by descending top score). Parameter: dtype.
KernelFamily route_priority_family();
/// Backward of gate_topk and gshard_loss: dL/dlogits. Parameters as gate_topk.
KernelFamily gate_backward_family();

KernelSpec gate_topk_spec(DType gate_dtype, int64_t experts, int64_t top_k, bool normalize, const Target& target);
/// `score_dtype`: float64 for float64 layers, float32 otherwise (CUDA scores are always fp32).
KernelSpec route_locations_spec(DType score_dtype, int64_t experts, int64_t top_k, const Target& target);
/// `score_dtype` as route_locations_spec.
KernelSpec route_priority_spec(DType score_dtype, const Target& target);
KernelSpec gate_backward_spec(DType gate_dtype, int64_t experts, int64_t top_k, bool normalize, const Target& target);
/// The dtype gate scores are kept in for a layer of `dtype`.
DType score_dtype_for(DType dtype);

/// The launch of gate_topk / gate_backward over `tokens`: CUDA, a thread per token in blocks of
/// 128; CPU, up to four blocks of tokens per thread.
LaunchConfig gating_launch_config(const KernelSpec& spec, int64_t tokens, unsigned parallelism);
/// The launch of route_locations: CUDA, a block of 256 threads per expert (a scan over the
/// tokens); CPU, one block (the locations are a sequential scan).
LaunchConfig route_locations_launch_config(const KernelSpec& spec, int64_t experts);
/// The launch of route_priority: CUDA, a thread per token in blocks of 256; CPU, one block.
LaunchConfig route_priority_launch_config(const KernelSpec& spec, int64_t tokens);

}  // namespace switchyard::kernels
