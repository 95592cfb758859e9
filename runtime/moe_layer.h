// MoeLayer: public (switchyard/moe_layer.h), with the internals its implementation files use.
#pragma once

#include <switchyard/moe_layer.h>

#include "comm/communicator.h"
#include "comm/hierarchical.h"
#include "runtime/context.h"
#include "runtime/dispatch_ops.h"
#include "runtime/elementwise_ops.h"
#include "runtime/gating_ops.h"
#include "runtime/model_config.h"
#include "runtime/tensor.h"

namespace switchyard {

/// The name of a weight's packed panels among the layer's packed copies and its expert tensors
/// (MoeLayerConfig::pack_expert_weights): the weight's name and this.
constexpr const char* kPanelsSuffix = ".panels";

}  // namespace switchyard
