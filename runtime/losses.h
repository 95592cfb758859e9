// The auxiliary losses of tutel-semantics 3 that are not computed inside the routing kernel.
#pragma once

#include <cstdint>
#include <vector>

namespace switchyard {

/// Tutel's load_importance_loss on host values: (L_importance + L_load) / 2, each
/// Var(x) / (Mean(x)^2 + 1e-10) over experts with the unbiased variance (E - 1). The load of
/// expert e sums Phi_{N(0, noise/E)}(probs[s, e] - threshold[s]) over tokens, threshold[s] being
/// the k-th largest logit of token s (as in Tutel, a probability is compared with a logit).
/// `probs` and `logits` are [S, E]; needs noise > 0 and E >= 2 (UserError otherwise).
double load_importance_loss(const std::vector<double>& probs, const std::vector<double>& logits, int64_t tokens,
                            int64_t experts, int64_t top_k, double gate_noise);

}  // namespace switchyard
