#include "tests/reference/example_loss_reference.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace switchyard::reference {

double example_loss(const std::vector<double>& y, int b, int t, int m, std::vector<double>* grad) {
  double loss = 0;
  if (grad) grad->assign(y.size(), 0.0);
  for (int i = 0; i < b; ++i) {
    std::vector<double> logits(t, 0.0);
    for (int j = 0; j < t; ++j)
      for (int k = 0; k < m; ++k) logits[j] += y[(static_cast<int64_t>(i) * t + j) * m + k];
    double mx = *std::max_element(logits.begin(), logits.end()), sum = 0;
    for (double v : logits) sum += std::exp(v - mx);
    loss += -(logits[0] - mx - std::log(sum));  // label 0 for every sample
    if (!grad) continue;
    for (int j = 0; j < t; ++j) {
      const double d = (std::exp(logits[j] - mx) / sum - (j == 0 ? 1.0 : 0.0)) / b;
      for (int k = 0; k < m; ++k) (*grad)[(static_cast<int64_t>(i) * t + j) * m + k] = d;
    }
  }
  return loss / b;
}

}  // namespace switchyard::reference
