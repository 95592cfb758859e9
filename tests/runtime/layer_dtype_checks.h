// Checks of a whole layer against the float64 host reference that run on any device and dtype:
// the CPU suites and the GPU suites call the same checks (gtest assertions inside).
#pragma once

#include "runtime/context.h"

namespace switchyard {
namespace testing {

/// Forward of a 128 x 256 x 4-expert layer with weights rounded to `dt`, with capacity 1.0 and
/// dropless grouped, against reference::layer_forward (a few near-tie tokens allowed in 16 bits).
void expect_layer_matches_reference(Context& context, Device& device, DType dt);
/// Forward + backward + one SGD step, FFN (gelu) and SwiGLU experts, capacity 1.0 and dropless
/// grouped, against reference::layer_backward: the input's and every parameter's gradient.
void expect_training_step_matches_reference(Context& context, Device& device, DType dt);

}  // namespace testing
}  // namespace switchyard
