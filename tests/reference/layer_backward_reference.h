// The layer's gradients from its parameters, composed from the reference ops only (plain loops
// in double, no JIT): the oracle for backward on devices whose build has no CPU layer.
#pragma once

#include "tests/reference/layer_reference.h"

namespace switchyard::reference {

struct LayerGradients {
  std::vector<double> input;  // dL/dx [S, M]
  LayerParams params;         // dL/dp for every parameter, by Tutel's names
};

/// Gradients of L = <grad_output, layer(x)> + aux_weight * l_aux, with the routing (indices,
/// locations, capacity) of the forward at x held fixed, as the layer's backward defines them.
LayerGradients layer_backward(const MoeLayerConfig& config, const LayerParams& params, const std::vector<double>& x,
                              const std::vector<double>& grad_output, int64_t tokens, const ForwardOptions& options,
                              double aux_weight);

}  // namespace switchyard::reference
