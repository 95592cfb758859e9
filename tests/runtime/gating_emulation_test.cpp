// The CUDA gating templates (templates/switchyard/cuda/gating.cuh) run on the host through
// tests/support/cuda_emulation.h, with their families' own launches, against the float64
// reference: softmax and top-k (ties to the lower expert), normalization, batch-prioritized
// order, locations from the block-wide prefix sums (warp shuffles), counts and the gshard_loss
// terms, and the gate's backward (through normalization and the aux loss's term). Logits are tied
// on purpose (tied_logits).
#include "tests/support/cuda_emulation.h"  // before the templates

#include <gtest/gtest.h>

#include <random>
#include <switchyard/cuda/gating.cuh>

#include "jit/kernels/gating.h"
#include "tests/reference/backward_reference.h"
#include "tests/reference/moe_reference.h"

namespace switchyard {
namespace {

struct Case {
  int tokens;
  bool batch_prioritized;
};

// Logits with exact ties, in float and in double alike. Without batch-prioritized routing, values
// from {-1, -0.5, 0, 0.5, 1}: many ties among a token's experts. With it, the tokens' top scores
// are compared across tokens, where rows that are permutations of each other round differently
// in float and double: every token takes one of 7 rows (continuous values, one pair of experts
// tied in each), so equal top scores come from identical rows only.
std::vector<float> tied_logits(int tokens, int experts, bool batch_prioritized, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> pick(-2, 2);
  std::uniform_real_distribution<float> uniform(-2.0f, 2.0f);
  std::uniform_int_distribution<int> row_of(0, 6), expert(0, experts - 1);
  std::vector<float> rows(static_cast<size_t>(7) * experts);
  for (float& v : rows) v = uniform(rng);
  for (int r = 0; r < 7; ++r) rows[r * experts + expert(rng)] = rows[r * experts + expert(rng)];
  std::vector<float> logits(static_cast<size_t>(tokens) * experts);
  for (int t = 0; t < tokens; ++t) {
    const int r = row_of(rng);
    for (int e = 0; e < experts; ++e)
      logits[t * experts + e] = batch_prioritized ? rows[r * experts + e] : 0.5f * static_cast<float>(pick(rng));
  }
  return logits;
}

template <int kExperts, int kTopK, bool kNormalize>
void expect_routing_matches(const Case& c) {
  SCOPED_TRACE(::testing::Message() << c.tokens << " tokens, " << kExperts << " experts, top-" << kTopK
                                    << (kNormalize ? ", normalized" : "") << (c.batch_prioritized ? ", BPR" : ""));
  const Target gpu = Target::cuda(90, true);
  const int s = c.tokens;
  const std::vector<float> logits = tied_logits(s, kExperts, c.batch_prioritized, 7 + s);
  std::vector<float> scores(static_cast<size_t>(s) * kExperts), gates(kTopK * s), top_score(s);
  std::vector<int> indices(kTopK * s, -1), locations(kTopK * s, -1), order(s, -1), scratch(s);
  std::vector<int> counts(kExperts, -1), top1(kExperts, -1);
  std::vector<float> loss_terms(kExperts, NAN);

  const kernels::GateTopkArgs topk{logits.data(), scores.data(), indices.data(), gates.data(), top_score.data(), s};
  const LaunchConfig topk_launch =
      kernels::gating_launch_config(kernels::gate_topk_spec(DType::kFloat32, kExperts, kTopK, kNormalize, gpu), s, 132);
  emulation::launch(topk_launch, [&] { cuda::gate_topk<float, kExperts, kTopK, kNormalize>(topk); });
  if (c.batch_prioritized) {
    const kernels::PriorityArgs priority{top_score.data(), order.data(), scratch.data(), s};
    const LaunchConfig launch =
        kernels::route_priority_launch_config(kernels::route_priority_spec(DType::kFloat32, gpu), s);
    emulation::launch(launch, [&] { cuda::route_priority<float>(priority); });
  }
  const kernels::LocationsArgs locate{indices.data(),    c.batch_prioritized ? order.data() : nullptr,
                                      scores.data(),     locations.data(),
                                      counts.data(),     top1.data(),
                                      loss_terms.data(), s};
  const LaunchConfig locate_launch = kernels::route_locations_launch_config(
      kernels::route_locations_spec(DType::kFloat32, kExperts, kTopK, gpu), kExperts);
  emulation::launch(locate_launch, [&] { cuda::route_locations<float, kExperts, kTopK>(locate); });

  const reference::Routing want = reference::route(std::vector<double>(logits.begin(), logits.end()), s, kExperts,
                                                   kTopK, 1.0, kNormalize, c.batch_prioritized, 1);
  for (size_t i = 0; i < scores.size(); ++i) ASSERT_NEAR(scores[i], want.scores[i], 1e-6) << "score " << i;
  EXPECT_EQ(indices, want.indices);
  EXPECT_EQ(locations, want.locations);
  for (size_t i = 0; i < gates.size(); ++i) ASSERT_NEAR(gates[i], want.gates[i], 1e-6) << "gate " << i;
  EXPECT_EQ(counts, want.counts);
  double l_aux = 0;
  for (int e = 0; e < kExperts; ++e) {
    int first = 0;
    for (int t = 0; t < s; ++t) first += want.indices[t] == e;
    EXPECT_EQ(top1[e], first) << "expert " << e;
    l_aux += loss_terms[e];
  }
  EXPECT_NEAR(l_aux * kExperts, want.l_aux, 1e-5 * (1 + want.l_aux));
}

TEST(GatingEmulation, RoutingMatchesTheReference) {
  // More tokens than one block's 256 threads, a partial last tile, BPR ties between tokens.
  expect_routing_matches<8, 2, true>({300, false});
  expect_routing_matches<5, 1, false>({700, true});
  expect_routing_matches<64, 4, true>({257, true});
  expect_routing_matches<2, 2, false>({33, false});
}

// dL/dlogits from dL/dgates through top-k, the normalization and softmax, plus the aux loss's
// per-expert term (aux_scale * top1_counts[e], as the layer passes it), a thread per token.
template <int kExperts, int kTopK, bool kNormalize>
void expect_gate_backward_matches(int tokens, bool with_aux) {
  SCOPED_TRACE(::testing::Message() << tokens << " tokens, " << kExperts << " experts, top-" << kTopK
                                    << (kNormalize ? ", normalized" : "") << (with_aux ? ", aux loss" : ""));
  std::mt19937 rng(17 + tokens);
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<double> logits(static_cast<size_t>(tokens) * kExperts), dg(kTopK * tokens);
  for (double& v : logits) v = 2 * u(rng);
  for (double& v : dg) v = u(rng);
  const reference::Routing routed = reference::route(logits, tokens, kExperts, kTopK, 1.0, kNormalize, false, 1);
  const std::vector<float> scores(routed.scores.begin(), routed.scores.end()), grad_gates(dg.begin(), dg.end());
  std::vector<int> top1(kExperts, 0);
  for (int t = 0; t < tokens; ++t) ++top1[routed.indices[t]];
  const double aux_scale = 0.01 * kExperts / (static_cast<double>(tokens) * tokens);
  std::vector<float> grad_logits(static_cast<size_t>(tokens) * kExperts, NAN);
  const kernels::GateBackwardArgs args{scores.data(),
                                       routed.indices.data(),
                                       grad_gates.data(),
                                       with_aux ? top1.data() : nullptr,
                                       aux_scale,
                                       grad_logits.data(),
                                       tokens};
  const KernelSpec spec = kernels::gate_backward_spec(DType::kFloat32, kExperts, kTopK, kNormalize, Target::cuda(90));
  const LaunchConfig launch = kernels::gating_launch_config(spec, tokens, 132);
  emulation::launch(launch, [&] { cuda::gate_backward<float, kExperts, kTopK, kNormalize>(args); });
  std::vector<double> aux;
  if (with_aux)
    for (int e = 0; e < kExperts; ++e) aux.push_back(static_cast<float>(aux_scale * top1[e]));
  const std::vector<double> want =
      reference::gate_backward(std::vector<double>(scores.begin(), scores.end()), routed.indices,
                               std::vector<double>(dg.begin(), dg.end()), aux, tokens, kExperts, kTopK, kNormalize);
  for (size_t i = 0; i < want.size(); ++i)
    ASSERT_NEAR(grad_logits[i], want[i], 1e-5 * (1 + std::abs(want[i]))) << "token " << i / kExperts;
}

TEST(GatingEmulation, GateBackwardMatchesTheReference) {
  expect_gate_backward_matches<8, 2, true>(300, true);
  expect_gate_backward_matches<8, 2, false>(129, false);
  expect_gate_backward_matches<5, 1, false>(70, true);
  expect_gate_backward_matches<64, 4, true>(33, true);
}

}  // namespace
}  // namespace switchyard
