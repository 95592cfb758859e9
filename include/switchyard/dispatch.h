// Dispatch encode and combine decode with Tutel's semantics (tutel-semantics 2.3), public for
// programs that route tokens themselves:
// dropped choices (location >= C) and negative expert indices are skipped, unused slots are zero.
#pragma once

#include <cstdint>

#include <switchyard/context.h>
#include <switchyard/export.h>
#include <switchyard/tensor.h>

namespace switchyard {

/// Where each token's k choices go: Tutel's `crit` without the loss.
struct SWITCHYARD_API Routing {
  Tensor indices;    // int32 [k, S]: expert of choice j of token s; negative = skip
  Tensor locations;  // int32 [k, S]: slot within the expert; >= capacity = dropped
  Tensor gates;      // [k, S]: float64 for float64 data, float32 otherwise
  int64_t capacity = 0;
  int64_t num_experts = 0;
};

/// The gate dtype that goes with a data dtype.
SWITCHYARD_API DType gate_dtype_for(DType data);

/// out[E, C, M] = tokens [S, M] scattered by `routing`; scaled by the gate when !is_postscore.
/// Every tensor must be contiguous and on one device; `out` is overwritten (unused slots zero).
SWITCHYARD_API void dispatch_encode(Context& context, const Tensor& tokens, const Routing& routing, bool is_postscore,
                                    const Tensor& out);

/// out[k, S] (gate dtype) = <slots[e_j(s), l_j(s)], other[s]> for kept choices, 0 otherwise: the
/// gate gradient of decode (slots = its input, other = dOut) or of pre-score encode (slots = dD,
/// other = the tokens).
SWITCHYARD_API void dispatch_gate_grad(Context& context, const Tensor& slots, const Tensor& other,
                                       const Routing& routing, const Tensor& out);

/// out[S, M] = sum over kept choices of slots[E, C, M], scaled by the gate when is_postscore.
SWITCHYARD_API void combine_decode(Context& context, const Tensor& slots, const Routing& routing, bool is_postscore,
                                   const Tensor& out);

}  // namespace switchyard
