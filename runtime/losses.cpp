#include "runtime/losses.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "core/error.h"

namespace switchyard {
namespace {

// Var / (Mean^2 + 1e-10) with the unbiased variance.
double coefficient_of_variation_squared(const std::vector<double>& values) {
  const double n = static_cast<double>(values.size());
  double mean = 0;
  for (double v : values) mean += v;
  mean /= n;
  double var = 0;
  for (double v : values) var += (v - mean) * (v - mean);
  var /= n - 1;
  return var / (mean * mean + 1e-10);
}

}  // namespace

double load_importance_loss(const std::vector<double>& probs, const std::vector<double>& logits, int64_t tokens,
                            int64_t experts, int64_t top_k, double gate_noise) {
  SY_CHECK(gate_noise > 0 && std::isfinite(gate_noise))
      << "load_importance_loss needs gate_noise > 0 (Tutel asserts it); got " << gate_noise;
  SY_CHECK(experts >= 2) << "load_importance_loss needs at least 2 experts (its variance is over experts); got "
                         << experts;
  SY_CHECK(top_k >= 1 && top_k <= experts) << "top_k = " << top_k << "; expected 1 to " << experts;
  std::vector<double> importance(static_cast<size_t>(experts), 0.0), load(static_cast<size_t>(experts), 0.0);
  const double sigma = gate_noise / static_cast<double>(experts);
  std::vector<double> row(static_cast<size_t>(experts));
  for (int64_t s = 0; s < tokens; ++s) {
    std::copy(logits.begin() + s * experts, logits.begin() + (s + 1) * experts, row.begin());
    std::nth_element(row.begin(), row.begin() + (top_k - 1), row.end(), std::greater<double>());
    const double threshold = row[static_cast<size_t>(top_k - 1)];
    for (int64_t e = 0; e < experts; ++e) {
      const double p = probs[s * experts + e];
      importance[e] += p;
      load[e] += 0.5 * std::erfc(-(p - threshold) / (sigma * std::sqrt(2.0)));  // normal CDF
    }
  }
  return (coefficient_of_variation_squared(importance) + coefficient_of_variation_squared(load)) / 2;
}

}  // namespace switchyard
