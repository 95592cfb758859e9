// Random test operands, drawn from a seeded generator so that a failure reproduces.
#pragma once

#include <random>
#include <vector>

namespace switchyard::testing {

/// `count` values drawn uniformly from [lo, hi).
template <typename T = double>
std::vector<T> uniform_values(std::mt19937& rng, size_t count, T lo = T(-1), T hi = T(1)) {
  std::uniform_real_distribution<T> draw(lo, hi);
  std::vector<T> values(count);
  for (T& v : values) v = draw(rng);
  return values;
}

}  // namespace switchyard::testing
