// The oracle for dispatch encode / combine decode: plain loops in double, written from
// tutel-semantics.md 2.3 and sharing no code with the kernels.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace switchyard::reference {

struct RoutingCase {
  int64_t tokens = 0, model_dim = 0, experts = 0, top_k = 0, capacity = 0;
  std::vector<int> indices;    // [k, S]
  std::vector<int> locations;  // [k, S]
  std::vector<double> gates;   // [k, S]
};

/// A random routing as Tutel builds it: k distinct experts per token, locations counted per
/// expert with choice j offset by all earlier choices' counts; some indices negated (skipped)
/// when `negative_fraction` > 0. Capacity is left to the caller.
RoutingCase random_routing(std::mt19937& rng, int64_t tokens, int64_t model_dim, int64_t experts, int64_t top_k,
                           double negative_fraction);

/// D[E, C, M]: kept (s, j) rows of x[S, M], scaled by the gate when !is_postscore.
std::vector<double> encode(const RoutingCase& r, const std::vector<double>& x, bool is_postscore);
/// Out[S, M]: sum of kept choices' rows of y[E, C, M], scaled by the gate when is_postscore.
std::vector<double> decode(const RoutingCase& r, const std::vector<double>& y, bool is_postscore);

}  // namespace switchyard::reference
