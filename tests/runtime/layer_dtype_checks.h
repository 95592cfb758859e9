// Checks of a whole layer against the float64 host reference that run on any device and dtype:
// the CPU suites and the GPU suites call the same checks (gtest assertions inside).
#pragma once

#include <optional>
#include <string>

#include "runtime/context.h"
#include "runtime/moe_layer.h"

namespace switchyard {
namespace testing {

/// A layer with one top gate and FFN experts: M, H, E and the stored dtype.
MoeLayerConfig layer_config(int64_t model_dim, int64_t hidden_size, int64_t experts, DType dt);

/// A tensor's bytes, copied to the host: what bit-exact comparisons compare.
std::string host_bytes(Device& device, const Tensor& t);
/// `rows` x `model_dim` normal values in `dt` on the device, drawn from `seed`.
Buffer normal_input(Device& device, DType dt, int64_t rows, int64_t model_dim, unsigned seed);
/// Writes every parameter of `to` in place through its view from `from`'s (an optimizer outside
/// the layer), then tells `to` (parameters_updated).
void write_parameters(Device& device, MoeLayer& to, const MoeLayer& from);

/// Forward of a 128 x 256 x 4-expert layer with weights rounded to `dt`, with capacity 1.0 and
/// dropless grouped, against reference::layer_forward (a few near-tie tokens allowed in 16 bits).
void expect_layer_matches_reference(Context& context, Device& device, DType dt);
/// Forward + backward + one SGD step, FFN (gelu) and SwiGLU experts, capacity 1.0 and dropless
/// grouped, against reference::layer_backward: the input's and every parameter's gradient.
/// `allow_tf32`: a float32 layer whose expert GEMMs may run in TF32 (checked with its tolerance).
void expect_training_step_matches_reference(Context& context, Device& device, DType dt, bool allow_tf32 = false);

/// Parameters written in place through parameter() views (an optimizer outside the layer), then
/// parameters_updated(): the next forward equals that of a layer loaded with the same weights, top
/// and FFN experts, in `dt`; with `allow_tf32`, at dims whose fc1 and fc2 reach the Hopper kernel's
/// TF32 (whose transposed copy of fc2 must follow).
void expect_parameter_writes_reach_forward(Context& context, Device& device, DType dt, bool allow_tf32 = false);

/// Two top gates: a training step (forward, backward, SGD) with gate 1 changes gate 1 and the
/// experts; then each gate's forward equals that of a layer given the same parameters through
/// parameter() views and parameters_updated() (the gates' GEMMs must read the parameters SGD wrote).
void expect_sgd_step_reaches_the_gate_it_used(Context& context, Device& device, DType dt);

/// Tensors through DLPack and the C API (the path of every binding, the Python module's
/// included) on `device` of Context::global(): views keep the memory, device and shape; the
/// layer reads the input where it lies and hands out its own memory; forward and backward equal
/// the C++ calls' bits; an input on another device, of another dtype or strided is a user error
/// naming it, with no output, after which the layer computes the same again.
void expect_dlpack_passes_tensors_without_copies(Device& device, DType dt);

/// The cosine_top layer the cosine checks use: M 8, H 12, E 4, proj_dim 6, gelu (dtype float32).
MoeLayerConfig cosine_test_config();
/// Forward of a cosine_top layer in `dt` (top-2, post- and pre-score) against reference::layer_forward
/// on the layer's own rounded weights and inputs.
void expect_cosine_forward_matches_reference(Context& context, Device& device, DType dt);
/// Every token to every expert (top_k = E, dropless: the loss <r, y> + 0.1 l_aux is smooth): every
/// cosine gate parameter's gradient and the input's against central differences of the float64
/// reference's loss at the layer's weights. `temperature`, when given, is set first (past log 100
/// the scale stays 100 and the temperature's gradient must be 0). float64 and float32 layers.
void expect_cosine_gradients_match_differences(Context& context, Device& device, DType dt,
                                               std::optional<double> temperature);

}  // namespace testing
}  // namespace switchyard
