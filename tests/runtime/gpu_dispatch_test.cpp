// Encode/decode on a CUDA device against the CPU backend (fp32) and the reference (fp16, bf16).
// Skips, printing why, when this machine has no CUDA device.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "runtime/dispatch_ops.h"
#include "tests/reference/dispatch_reference.h"
#include "tests/support/dtype_values.h"

namespace switchyard {
namespace {

// Host copies of one dtype's values as raw bytes.
struct HostValues {
  DType dtype;
  std::string bytes;
  HostValues(DType d, const std::vector<double>& values) : dtype(d), bytes(testing::encode_values(values, d)) {}
  std::vector<double> all() const { return testing::decode_values(bytes, dtype); }
};

class GpuDispatch : public ::testing::TestWithParam<DType> {
 protected:
  void SetUp() override {
    std::string reason = Context::cuda_unavailable_reason();
    if (!reason.empty()) GTEST_SKIP() << "GPU test skipped: " << reason;
  }
};

TEST_P(GpuDispatch, MatchesReference) {
  DType dtype = GetParam();
  Context& context = Context::global();
  Device& gpu = context.cuda(0);
  std::mt19937 rng(99);
  std::normal_distribution<double> normal;
  for (int trial = 0; trial < 24; ++trial) {
    int64_t dims[] = {8, 64, 1024, 4096, 6, 7};
    int64_t m = dims[trial % 6], experts = 2 + trial % 7, k = 1 + trial % 2, s = 1 + (trial * 37) % 300;
    auto r = reference::random_routing(rng, s, m, experts, k, trial % 3 == 0 ? 0.2 : 0.0);
    r.capacity = (s * k / experts) * (trial % 4 + 1) / 2;
    bool postscore = trial % 2;
    std::vector<double> x(s * m), y(experts * r.capacity * m);
    for (auto& v : x) v = normal(rng);
    for (auto& v : y) v = normal(rng);
    HostValues hx(dtype, x), hy(dtype, y);
    std::vector<float> gates(r.gates.begin(), r.gates.end());
    for (size_t i = 0; i < gates.size(); ++i) r.gates[i] = gates[i];
    Buffer dx(gpu, hx.bytes.size()), dy(gpu, hy.bytes.size()), dd(gpu, hy.bytes.size()), dout(gpu, hx.bytes.size());
    Buffer di(gpu, r.indices.size() * 4), dl(gpu, r.locations.size() * 4), dg(gpu, gates.size() * 4);
    gpu.copy_from_host(dx.data(), hx.bytes.data(), hx.bytes.size());
    gpu.copy_from_host(dy.data(), hy.bytes.data(), hy.bytes.size());
    gpu.copy_from_host(di.data(), r.indices.data(), r.indices.size() * 4);
    gpu.copy_from_host(dl.data(), r.locations.data(), r.locations.size() * 4);
    gpu.copy_from_host(dg.data(), gates.data(), gates.size() * 4);
    Routing routing{di.view(DType::kInt32, {k, s}), dl.view(DType::kInt32, {k, s}), dg.view(DType::kFloat32, {k, s}),
                    r.capacity, experts};
    dispatch_encode(context, dx.view(dtype, {s, m}), routing, postscore, dd.view(dtype, {experts, r.capacity, m}));
    combine_decode(context, dy.view(dtype, {experts, r.capacity, m}), routing, postscore, dout.view(dtype, {s, m}));
    HostValues got_d(dtype, std::vector<double>(y.size())), got_out(dtype, std::vector<double>(x.size()));
    gpu.copy_to_host(got_d.bytes.data(), dd.data(), got_d.bytes.size());
    gpu.copy_to_host(got_out.bytes.data(), dout.data(), got_out.bytes.size());
    // NOTE: the reference works on the values as stored in this dtype; the only extra error is
    // the final rounding to the dtype (and fp32 accumulation order in decode).
    double tolerance = dtype == DType::kFloat32 ? 1e-6 : dtype == DType::kFloat16 ? 2e-3 : 1.6e-2;
    auto want_d = reference::encode(r, hx.all(), postscore);
    auto want_out = reference::decode(r, hy.all(), postscore);
    auto d = got_d.all(), out = got_out.all();
    for (size_t i = 0; i < want_d.size(); ++i)
      ASSERT_NEAR(d[i], want_d[i], tolerance * (1 + std::abs(want_d[i]))) << trial;
    for (size_t i = 0; i < want_out.size(); ++i)
      ASSERT_NEAR(out[i], want_out[i], tolerance * (1 + std::abs(want_out[i]))) << trial;
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, GpuDispatch, ::testing::Values(DType::kFloat32, DType::kFloat16, DType::kBFloat16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

}  // namespace
}  // namespace switchyard
