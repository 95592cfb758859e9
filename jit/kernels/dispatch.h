// The two kernels that move tokens: dispatch encode and combine decode (forward).
// Parameters: dtype, model_dim, top_k, apply_gate, vec. apply_gate is true for encode in
// pre-score mode and for decode in post-score mode (tutel-semantics 2.2).
#pragma once

#include "jit/kernel_family.h"
#include "jit/launch_config.h"

namespace switchyard::kernels {

KernelFamily dispatch_encode_family();
KernelFamily combine_decode_family();
/// dg[j, s] = <slots[e_j(s), l_j(s)], other[s]>: the gate gradient of encode (pre-score) or decode
/// (post-score). Parameters: dtype, model_dim, top_k, vec.
KernelFamily gate_grad_family();
KernelSpec gate_grad_spec(DType dtype, int64_t model_dim, int64_t top_k, const Target& target);

/// The vector width (elements per load) for a row of `model_dim` elements of `dtype` on
/// `target`: the widest of 16/8/4/2/1 bytes that divides the row. Always 1 on the CPU, where
/// the compiler vectorizes the fixed-length loop itself.
int dispatch_vec_width(DType dtype, int64_t model_dim, const Target& target);

/// The spec of encode (or decode) for these settings, with the vector width of the rule above.
KernelSpec dispatch_spec(bool encode, DType dtype, int64_t model_dim, int64_t top_k, bool is_postscore,
                         const Target& target);

/// The launch of a dispatch_encode / combine_decode spec over `tokens`: CUDA, blocks of
/// kDispatchThreadsPerBlock threads taking dispatch_tokens_per_block tokens each; CPU, four
/// blocks per thread splitting the tokens (and the rows to zero) evenly.
LaunchConfig dispatch_launch_config(const KernelSpec& spec, int64_t tokens, unsigned parallelism);
/// The launch of a gate_grad spec over `tokens`: CUDA, a warp per token in blocks of
/// kGateGradTokensPerBlock warps; CPU, up to four blocks per thread.
LaunchConfig gate_grad_launch_config(const KernelSpec& spec, int64_t tokens, unsigned parallelism);

}  // namespace switchyard::kernels
