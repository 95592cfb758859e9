// The whole layer's function from its parameters, composed from the reference ops only.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "runtime/moe_layer.h"
#include "tests/reference/moe_reference.h"

namespace switchyard::reference {

using LayerParams = std::map<std::string, std::vector<double>>;

/// The reference's activation for a layer's.
Act reference_act(kernels::GemmActivation activation);

/// Gate logits [S, E] of x [S, M]: x wg^T (top), or Swin-MoE's cosine router (cosine_top:
/// normalize(x Wp^T + bp) . normalize(sim columns) * exp(min(t, log 100)), eps 1e-12).
/// Gate `gate` of the config (its parameters gates.<gate>.*).
std::vector<double> gate_logits(const MoeLayerConfig& config, const LayerParams& params, const std::vector<double>& x,
                                int64_t tokens, size_t gate);

/// Output [S, M] of a layer (routed by gate options.gate_index) with `config` and `params` (Tutel names) on x [S, M].
std::vector<double> layer_forward(const MoeLayerConfig& config, const LayerParams& params, const std::vector<double>& x,
                                  int64_t tokens, const ForwardOptions& options, double* l_aux);

/// The parameters of a CPU layer as doubles.
LayerParams layer_params(const MoeLayer& layer);

}  // namespace switchyard::reference
