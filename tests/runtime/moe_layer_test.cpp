// The MoE layer forward on the CPU against the reference: routing, capacity, every expert
// variant, option switching, safetensors, and bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "core/error.h"
#include "core/fs.h"
#include "runtime/capacity.h"
#include "runtime/gating_ops.h"
#include "runtime/moe_layer.h"
#include "runtime/safetensors.h"
#include "tests/reference/dispatch_reference.h"
#include "tests/reference/moe_reference.h"
#include "tests/support/test_support.h"

namespace switchyard {
namespace {

using reference::Act;

template <typename T>
std::vector<double> host_values(const Tensor& t) {
  const T* p = t.data_as<const T>();
  return std::vector<double>(p, p + t.numel());
}

std::vector<double> values_of(const Tensor& t) {
  return t.dtype() == DType::kFloat64 ? host_values<double>(t) : host_values<float>(t);
}

TEST(Capacity, HandComputedCases) {
  // tutel-semantics 1.3 worked examples: S=10, E=4, k=2 -> spe = 3.
  EXPECT_EQ(moe_capacity(10, 4, 2, 1.0, 9, 1), 6);
  EXPECT_EQ(moe_capacity(10, 4, 2, 1.25, 9, 1), 6);  // 2 * floor(3.75)
  EXPECT_EQ(moe_capacity(10, 4, 2, -0.5, 9, 1), 2);  // min(9, 2 * floor(1.5))
  EXPECT_EQ(moe_capacity(10, 4, 2, -0.5, 1, 1), 1);  // bounded by the largest count
  EXPECT_EQ(moe_capacity(10, 4, 2, 1.0, 9, 4), 8);   // 6 rounded up to the alignment
  EXPECT_EQ(moe_capacity(10, 4, 1, 0.3, 9, 1), 0);   // no minimum: every token dropped
  EXPECT_EQ(moe_capacity(10, 4, 2, 0.0, 7, 1), 7);   // dropless: the largest count
  EXPECT_EQ(moe_capacity(10, 4, 2, 0.0, 7, 4), 8);
  EXPECT_EQ(moe_alignment(1, 1, 0), 1);
  EXPECT_EQ(moe_alignment(2, 3, 4), 8);      // ceil(6 / 4) * 4
  EXPECT_EQ(moe_alignment(300, 1, 0), 384);  // above 256: a multiple of 128
}

Tensor host_tensor(std::vector<float>& v, std::vector<int64_t> shape) {
  return Tensor(v.data(), DType::kFloat32, std::move(shape));
}

TEST(Routing, HandComputedLocationsWithOffsetsAndPriority) {
  // 4 tokens, 3 experts, top-2. Scores chosen so token order and priority order differ.
  std::vector<float> logits = {3, 2, 0,   // token 0: experts 0, 1
                               0, 1, 5,   // token 1: experts 2, 1
                               4, 0, 1,   // token 2: experts 0, 2
                               1, 1, 0};  // token 3: experts 0, 1 (tie -> lower index first)
  RoutedTokens plain = route_tokens(Context::global(), host_tensor(logits, {4, 3}), 2, true, false);
  std::vector<int> idx(plain.indices.data_as<int>(), plain.indices.data_as<int>() + 8);
  std::vector<int> loc(plain.locations.data_as<int>(), plain.locations.data_as<int>() + 8);
  EXPECT_EQ(idx, (std::vector<int>{0, 2, 0, 0, 1, 1, 2, 1}));
  // First choices: expert 0 gets tokens 0, 2, 3 -> 0, 1, 2; expert 2 gets token 1 -> 0.
  // Second choices come after all first choices of the same expert: expert 1 -> 0, 1, 2 (no
  // first choices); expert 2 gets token 2 after token 1's first choice -> 1.
  EXPECT_EQ(loc, (std::vector<int>{0, 0, 1, 2, 0, 1, 1, 2}));
  EXPECT_EQ(read_counts(*plain.storage, plain.counts), (std::vector<int>{3, 3, 2}));
  // Batch-prioritized: visit by descending top score: token 1 (5 vs ...), 2, 0, 3.
  RoutedTokens bpr = route_tokens(Context::global(), host_tensor(logits, {4, 3}), 2, true, true);
  std::vector<int> bloc(bpr.locations.data_as<int>(), bpr.locations.data_as<int>() + 8);
  EXPECT_EQ(bloc, (std::vector<int>{1, 0, 0, 2, 1, 0, 1, 2}));
  EXPECT_EQ(read_counts(*bpr.storage, bpr.counts), (std::vector<int>{3, 3, 2}))
      << "BPR counts are the true counts (Tutel's miscount not copied)";
}

TEST(Routing, RandomCasesMatchReference) {
  std::mt19937 rng(11);
  std::normal_distribution<double> normal(0, 2);
  for (int trial = 0; trial < 24; ++trial) {
    int64_t s = 1 + trial * 7 % 61, e = 1 + trial % 9, k = 1 + trial % std::min<int64_t>(3, e);
    bool normalize = trial % 3 != 0, bpr = trial % 2 == 1;
    std::vector<double> logits(s * e);
    for (auto& v : logits) v = normal(rng);
    if (trial % 4 == 1)  // repeated tokens: equal top scores, visited in token order (a stable sort)
      for (int64_t t = 3; t < s; t += 3) std::copy_n(logits.begin(), e, logits.begin() + t * e);
    std::vector<float> lf(logits.begin(), logits.end());
    std::vector<double> stored(lf.begin(), lf.end());
    auto want = reference::route(stored, s, e, k, 1.0, normalize, bpr, 1);
    RoutedTokens got = route_tokens(Context::global(), host_tensor(lf, {s, e}), k, normalize, bpr);
    SCOPED_TRACE("trial " + std::to_string(trial));
    EXPECT_EQ(std::vector<int>(got.indices.data_as<int>(), got.indices.data_as<int>() + k * s), want.indices);
    EXPECT_EQ(std::vector<int>(got.locations.data_as<int>(), got.locations.data_as<int>() + k * s), want.locations);
    EXPECT_EQ(read_counts(*got.storage, got.counts), want.counts);
    auto gates = values_of(got.gates), scores = values_of(got.scores);
    for (size_t i = 0; i < gates.size(); ++i) EXPECT_NEAR(gates[i], want.gates[i], 1e-6);
    for (size_t i = 0; i < scores.size(); ++i) EXPECT_NEAR(scores[i], want.scores[i], 1e-6);
    EXPECT_NEAR(read_gshard_loss(*got.storage, got.loss_terms), want.l_aux, 1e-5);
  }
}

}  // namespace
}  // namespace switchyard
