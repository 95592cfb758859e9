#include "tests/reference/dispatch_reference.h"

#include <algorithm>
#include <numeric>

namespace switchyard::reference {

RoutingCase random_routing(std::mt19937& rng, int64_t tokens, int64_t model_dim, int64_t experts, int64_t top_k,
                           double negative_fraction) {
  RoutingCase r;
  r.tokens = tokens;
  r.model_dim = model_dim;
  r.experts = experts;
  r.top_k = top_k;
  r.indices.assign(top_k * tokens, 0);
  r.locations.assign(top_k * tokens, 0);
  r.gates.assign(top_k * tokens, 0.0);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<int> order(experts);
  for (int64_t s = 0; s < tokens; ++s) {
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    for (int64_t j = 0; j < top_k; ++j) {
      r.indices[j * tokens + s] = order[j];
      r.gates[j * tokens + s] = 0.05 + unit(rng);
    }
  }
  // Locations: running count per expert, choice by choice (the k-th choice after all earlier ones).
  std::vector<int> count(experts, 0);
  for (int64_t j = 0; j < top_k; ++j) {
    for (int64_t s = 0; s < tokens; ++s) {
      int e = r.indices[j * tokens + s];
      r.locations[j * tokens + s] = count[e]++;
    }
  }
  for (auto& idx : r.indices) {
    if (unit(rng) < negative_fraction) idx = -1 - idx;
  }
  return r;
}

namespace {
bool kept(const RoutingCase& r, int64_t j, int64_t s) {
  int e = r.indices[j * r.tokens + s];
  int l = r.locations[j * r.tokens + s];
  return e >= 0 && l < r.capacity;
}
}  // namespace

std::vector<double> encode(const RoutingCase& r, const std::vector<double>& x, bool is_postscore) {
  std::vector<double> d(r.experts * r.capacity * r.model_dim, 0.0);
  for (int64_t s = 0; s < r.tokens; ++s) {
    for (int64_t j = 0; j < r.top_k; ++j) {
      if (!kept(r, j, s)) continue;
      double g = is_postscore ? 1.0 : r.gates[j * r.tokens + s];
      int64_t row = r.indices[j * r.tokens + s] * r.capacity + r.locations[j * r.tokens + s];
      for (int64_t m = 0; m < r.model_dim; ++m) d[row * r.model_dim + m] = g * x[s * r.model_dim + m];
    }
  }
  return d;
}

std::vector<double> decode(const RoutingCase& r, const std::vector<double>& y, bool is_postscore) {
  std::vector<double> out(r.tokens * r.model_dim, 0.0);
  for (int64_t s = 0; s < r.tokens; ++s) {
    for (int64_t j = 0; j < r.top_k; ++j) {
      if (!kept(r, j, s)) continue;
      double g = is_postscore ? r.gates[j * r.tokens + s] : 1.0;
      int64_t row = r.indices[j * r.tokens + s] * r.capacity + r.locations[j * r.tokens + s];
      for (int64_t m = 0; m < r.model_dim; ++m) out[s * r.model_dim + m] += g * y[row * r.model_dim + m];
    }
  }
  return out;
}

}  // namespace switchyard::reference
