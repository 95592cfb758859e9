// What one rank of a group holds of a global expert tensor (or its gradient), given the tensor
// of a single-rank layer with every expert: the multi-rank suites' oracle for parameters.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace switchyard::testing {

/// Experts spread (E >= W): rank q holds experts [q * E / W, ...), the q-th of W equal chunks.
/// Experts shared by s = W / E ranks: rank e * s + q holds hidden slice q of expert e (again the
/// rank-th equal chunk), and slice q of the fc2 bias padded to s * ceil(M / s).
inline std::vector<double> rank_part(const std::string& name, const std::vector<double>& global, int rank, int world,
                                     int64_t experts, int64_t model_dim) {
  if (experts >= world || name != "experts.batched_fc2_bias") {
    const size_t chunk = global.size() / static_cast<size_t>(world);
    return std::vector<double>(global.begin() + static_cast<std::ptrdiff_t>(rank * chunk),
                               global.begin() + static_cast<std::ptrdiff_t>((rank + 1) * chunk));
  }
  const int64_t s = world / experts, padded = (model_dim + s - 1) / s, expert = rank / s, q = rank % s;
  std::vector<double> slice(static_cast<size_t>(padded), 0.0);
  for (int64_t j = 0; j < padded && q * padded + j < model_dim; ++j)
    slice[static_cast<size_t>(j)] = global[static_cast<size_t>(expert * model_dim + q * padded + j)];
  return slice;
}

}  // namespace switchyard::testing
