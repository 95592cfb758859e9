#include "tests/reference/backward_reference.h"

#include <cmath>

namespace switchyard::reference {

double activate_grad(Act act, double x) {
  switch (act) {
    case Act::kRelu:
      return x > 0 ? 1 : 0;
    case Act::kGelu:
      return 0.5 * (1 + std::erf(x / std::sqrt(2.0))) + x * std::exp(-x * x / 2) / std::sqrt(2 * M_PI);
    case Act::kSilu: {
      const double sig = 1 / (1 + std::exp(-x));
      return sig + x * sig * (1 - sig);
    }
    case Act::kNone:
      return 1;
  }
  return 1;
}

std::vector<double> weight_grad(const std::vector<double>& a, const std::vector<double>& g, int64_t batch, int64_t rows,
                                int64_t k, int64_t n, const std::vector<int>* row_counts) {
  std::vector<double> c(batch * k * n, 0.0);
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t used = row_counts ? (*row_counts)[b] : rows;
    for (int64_t r = 0; r < used; ++r)
      for (int64_t i = 0; i < k; ++i)
        for (int64_t j = 0; j < n; ++j) c[(b * k + i) * n + j] += a[(b * rows + r) * k + i] * g[(b * rows + r) * n + j];
  }
  return c;
}

std::vector<double> gate_grad(const RoutingCase& r, const std::vector<double>& slots,
                              const std::vector<double>& other) {
  std::vector<double> dg(r.top_k * r.tokens, 0.0);
  for (int64_t j = 0; j < r.top_k; ++j)
    for (int64_t s = 0; s < r.tokens; ++s) {
      const int e = r.indices[j * r.tokens + s], l = r.locations[j * r.tokens + s];
      if (e < 0 || l < 0 || l >= r.capacity) continue;
      for (int64_t m = 0; m < r.model_dim; ++m)
        dg[j * r.tokens + s] += slots[(e * r.capacity + l) * r.model_dim + m] * other[s * r.model_dim + m];
    }
  return dg;
}

std::vector<double> gate_backward(const std::vector<double>& scores, const std::vector<int>& indices,
                                  const std::vector<double>& grad_gates, const std::vector<double>& aux, int64_t tokens,
                                  int64_t experts, int64_t top_k, bool normalize) {
  std::vector<double> out(tokens * experts);
  for (int64_t s = 0; s < tokens; ++s) {
    const double* p = &scores[s * experts];
    std::vector<double> d_scores(experts, 0.0);
    for (int64_t e = 0; e < experts; ++e) d_scores[e] = aux.empty() ? 0.0 : aux[e];
    double total = 0;
    for (int64_t j = 0; j < top_k; ++j) total += p[indices[j * tokens + s]];
    const bool normalized = normalize && top_k > 1;
    const double eps = 2.220446049250313e-16, denom = std::max(total, eps);
    // g_j = p_j / denom: dg_j/dp_i = [i == j] / denom - p_j / denom^2 (the second term only
    // while the sum is above eps, where the denominator depends on p).
    for (int64_t j = 0; j < top_k; ++j) {
      const int64_t ej = indices[j * tokens + s];
      const double dg = grad_gates[j * tokens + s];
      if (!normalized) {
        d_scores[ej] += dg;
        continue;
      }
      d_scores[ej] += dg / denom;
      if (total > eps)
        for (int64_t i = 0; i < top_k; ++i) d_scores[indices[i * tokens + s]] -= dg * p[ej] / (denom * denom);
    }
    // Softmax: dlogit_e = sum_f dscore_f * p_f * ([e == f] - p_e).
    for (int64_t e = 0; e < experts; ++e) {
      double sum = 0;
      for (int64_t f = 0; f < experts; ++f) sum += d_scores[f] * p[f] * ((e == f ? 1.0 : 0.0) - p[e]);
      out[s * experts + e] = sum;
    }
  }
  return out;
}

}  // namespace switchyard::reference
