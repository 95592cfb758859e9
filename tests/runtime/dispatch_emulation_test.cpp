// The CUDA dispatch templates (dispatch_encode.cuh, combine_decode.cuh, gate_grad.cuh) run on the
// host through tests/support/cuda_emulation.h, with their families' own launches and vector
// widths, against the float64 reference (tests/reference/dispatch_reference.h): skipped choices
// (negative experts), choices dropped past the capacity, gates applied or not, rows not a
// multiple of a block's tokens, float32 and bfloat16 rows.
#include "tests/support/cuda_emulation.h"  // before the templates

#include <gtest/gtest.h>

#include <random>
#include <switchyard/cuda/combine_decode.cuh>
#include <switchyard/cuda/dispatch_encode.cuh>
#include <switchyard/cuda/gate_grad.cuh>

#include "jit/kernels/dispatch.h"
#include "tests/reference/dispatch_reference.h"
#include "tests/support/dtype_values.h"
#include "tests/support/random_values.h"

namespace switchyard {
namespace {

using testing::uniform_values;

using testing::decode_values;
using testing::encode_values;

const Target kGpu = Target::cuda(90, true);

// A routing of `tokens` over 4 experts whose capacity keeps about three quarters of the choices.
reference::RoutingCase routing(std::mt19937& rng, int64_t tokens, int64_t model_dim, int64_t top_k) {
  reference::RoutingCase r = reference::random_routing(rng, tokens, model_dim, 4, top_k, 0.1);
  r.capacity = tokens * top_k * 3 / 16;
  return r;
}

kernels::DispatchArgs dispatch_args(const reference::RoutingCase& r, const std::vector<float>& gates, const void* input,
                                    void* output) {
  return {input,
          r.indices.data(),
          r.locations.data(),
          gates.data(),
          output,
          static_cast<int>(r.tokens),
          static_cast<int>(r.capacity),
          static_cast<int>(r.experts),
          nullptr,
          nullptr};
}

// A layer's round trip: encode applies the gate before the experts (pre-score) or decode after
// them (post-score). The kernel's vector width is the family's rule for this row.
template <typename T, int kModelDim, int kTopK, int kVec, bool kPostscore>
void expect_encode_and_decode_match(DType dt, int64_t tokens) {
  SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " " << tokens << " tokens, M " << kModelDim << ", top-"
                                    << kTopK << (kPostscore ? ", post-score" : ", pre-score"));
  ASSERT_EQ(kernels::dispatch_vec_width(dt, kModelDim, kGpu), kVec);
  std::mt19937 rng(11 + tokens);
  const reference::RoutingCase r = routing(rng, tokens, kModelDim, kTopK);
  const std::vector<float> gates(r.gates.begin(), r.gates.end());
  const std::vector<double> x = decode_values(encode_values(uniform_values(rng, tokens * kModelDim), dt), dt);
  const std::string x_bytes = encode_values(x, dt);
  std::string slots = encode_values(std::vector<double>(r.experts * r.capacity * kModelDim, 0.0), dt);
  const kernels::DispatchArgs encode = dispatch_args(r, gates, x_bytes.data(), slots.data());
  const LaunchConfig launch = kernels::dispatch_launch_config(
      kernels::dispatch_spec(true, dt, kModelDim, kTopK, kPostscore, kGpu), tokens, 132);
  emulation::launch(launch, [&] { cuda::dispatch_encode<T, kModelDim, kTopK, !kPostscore, kVec>(encode); });
  const double tol = dt == DType::kFloat32 ? 1e-6 : 1e-2;
  const std::vector<double> want_slots = reference::encode(r, x, kPostscore), got_slots = decode_values(slots, dt);
  for (size_t i = 0; i < want_slots.size(); ++i)
    ASSERT_NEAR(got_slots[i], want_slots[i], tol * (1 + std::abs(want_slots[i]))) << "slot element " << i;

  std::string out = encode_values(std::vector<double>(tokens * kModelDim, 7.0), dt);
  const kernels::DispatchArgs decode = dispatch_args(r, gates, slots.data(), out.data());
  const LaunchConfig decode_launch = kernels::dispatch_launch_config(
      kernels::dispatch_spec(false, dt, kModelDim, kTopK, kPostscore, kGpu), tokens, 132);
  emulation::launch(decode_launch, [&] { cuda::combine_decode<T, kModelDim, kTopK, kPostscore, kVec>(decode); });
  const std::vector<double> want_out = reference::decode(r, got_slots, kPostscore), got_out = decode_values(out, dt);
  for (size_t i = 0; i < want_out.size(); ++i)
    ASSERT_NEAR(got_out[i], want_out[i], tol * (1 + std::abs(want_out[i]))) << "output element " << i;
}

TEST(DispatchEmulation, EncodeAndDecodeMatchTheReference) {
  expect_encode_and_decode_match<float, 96, 2, 4, true>(DType::kFloat32, 301);
  expect_encode_and_decode_match<float, 50, 1, 2, false>(DType::kFloat32, 77);
  expect_encode_and_decode_match<cuda::bf16_t, 64, 2, 8, false>(DType::kBFloat16, 130);
  expect_encode_and_decode_match<cuda::bf16_t, 1030, 4, 2, true>(DType::kBFloat16, 40);
}

// dg[j, s] = <slots[e_j(s), l_j(s)], other[s]>, zero for a skipped or dropped choice; a warp per
// token, its lanes' partial sums reduced by shuffles.
template <int kModelDim, int kTopK, int kVec>
void expect_gate_grad_matches(int64_t tokens) {
  SCOPED_TRACE(::testing::Message() << tokens << " tokens, M " << kModelDim << ", top-" << kTopK);
  const KernelSpec spec = kernels::gate_grad_spec(DType::kFloat32, kModelDim, kTopK, kGpu);
  ASSERT_EQ(spec.int_param("vec"), kVec);
  std::mt19937 rng(13 + tokens);
  const reference::RoutingCase r = routing(rng, tokens, kModelDim, kTopK);
  const std::vector<float> gates(r.gates.begin(), r.gates.end());
  std::vector<float> slots(r.experts * r.capacity * kModelDim), other(tokens * kModelDim);
  for (float& v : slots) v = static_cast<float>(std::uniform_real_distribution<double>(-1, 1)(rng));
  for (float& v : other) v = static_cast<float>(std::uniform_real_distribution<double>(-1, 1)(rng));
  std::vector<float> grad(kTopK * tokens, NAN);
  kernels::DispatchArgs args = dispatch_args(r, gates, slots.data(), grad.data());
  args.other = other.data();
  const LaunchConfig launch = kernels::gate_grad_launch_config(spec, tokens, 132);
  emulation::launch(launch, [&] { cuda::gate_grad<float, kModelDim, kTopK, kVec>(args); });
  for (int64_t j = 0; j < kTopK; ++j)
    for (int64_t s = 0; s < tokens; ++s) {
      const int e = r.indices[j * tokens + s], slot = r.locations[j * tokens + s];
      double want = 0;
      if (e >= 0 && slot < r.capacity)
        for (int64_t m = 0; m < kModelDim; ++m)
          want += static_cast<double>(slots[(e * r.capacity + slot) * kModelDim + m]) * other[s * kModelDim + m];
      ASSERT_NEAR(grad[j * tokens + s], want, 1e-5 * (1 + std::abs(want))) << "choice " << j << " token " << s;
    }
}

TEST(DispatchEmulation, GateGradientMatchesTheReference) {
  expect_gate_grad_matches<96, 2, 4>(301);  // 301 tokens: the last block's warps partly leave
  expect_gate_grad_matches<30, 3, 2>(9);
}

}  // namespace
}  // namespace switchyard
