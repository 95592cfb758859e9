// Tutel's ExampleModel loss on the layer output, in plain double loops: the oracle for the
// example-loss kernels (and what helloworld computed on the host before them).
#pragma once

#include <vector>

namespace switchyard::reference {

/// Loss of y [B, T, M]: logits are each token's sum over M, softmax over the T tokens, cross
/// entropy against token 0, mean over B. `grad` (when given) receives dL/dy.
double example_loss(const std::vector<double>& y, int b, int t, int m, std::vector<double>* grad);

}  // namespace switchyard::reference
