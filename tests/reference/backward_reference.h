// The oracle for the backward kernels: plain loops in double, written from the calculus of
// tutel-semantics 1.3, 2.3 and 3 (explicit dL/dscores vectors), sharing no code with the kernels.
#pragma once

#include <cstdint>
#include <vector>

#include "tests/reference/dispatch_reference.h"
#include "tests/reference/moe_reference.h"

namespace switchyard::reference {

/// act'(x).
double activate_grad(Act act, double x);

/// c[b] = a[b]^T g[b] over the first rows[b] rows: a [B, R, K], g [B, R, N], c [B, K, N].
std::vector<double> weight_grad(const std::vector<double>& a, const std::vector<double>& g, int64_t batch, int64_t rows,
                                int64_t k, int64_t n, const std::vector<int>* row_counts);

/// dg[j, s] = keep_j(s) * <slots[e_j(s), l_j(s)], other[s]>.
std::vector<double> gate_grad(const RoutingCase& r, const std::vector<double>& slots, const std::vector<double>& other);

/// dL/dlogits [S, E] from dL/dgates [k, S] and a per-expert dL/dscores term `aux` [E] (may be
/// empty), through softmax, top-k selection `indices` [k, S] and the optional normalization.
std::vector<double> gate_backward(const std::vector<double>& scores, const std::vector<int>& indices,
                                  const std::vector<double>& grad_gates, const std::vector<double>& aux, int64_t tokens,
                                  int64_t experts, int64_t top_k, bool normalize);

}  // namespace switchyard::reference
