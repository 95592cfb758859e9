// The settings of MoeLayer::sgd_step.
#pragma once

namespace switchyard {

/// torch.optim.SGD's settings (no dampening, no Nesterov).
struct SgdOptions {
  double lr = 1e-5;
  double momentum = 0;
  double weight_decay = 0;
};

}  // namespace switchyard
