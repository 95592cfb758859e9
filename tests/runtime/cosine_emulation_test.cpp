// The CUDA cosine-gate kernels (templates/switchyard/cuda/cosine.cuh) run on the host through
// tests/support/cuda_emulation.h, with their family's launches, against the formulas of
// common/cosine_args.h in double: strided vectors (a matrix's columns) normalized, a zero vector
// at the clamp, the normalization's backward, the temperature scale below and above Tutel's
// clamp, and the scale's backward (one block's strided sums and tree).
#include "tests/support/cuda_emulation.h"  // before the templates

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <switchyard/cuda/cosine.cuh>

#include "jit/kernels/cosine.h"
#include "tests/support/random_values.h"

namespace switchyard {
namespace {

using testing::uniform_values;

template <int kOp>
void run(const kernels::CosineArgs& args, long items) {
  const KernelSpec spec = kernels::cosine_spec(DType::kFloat32, kernels::CosineOp(kOp), Target::cuda(90));
  const LaunchConfig launch = kernels::cosine_launch_config(spec, items, 132);
  emulation::launch(launch, [&] { cuda::cosine<float, kOp>(args); });
}

// The columns of a [length, vectors] matrix (element stride `vectors`), column 3 all zeros.
TEST(CosineEmulation, NormalizeAndItsBackwardMatchTheFormulas) {
  std::mt19937 rng(37);
  const long vectors = 300, length = 24;
  std::vector<float> x = uniform_values<float>(rng, vectors * length),
                     dy = uniform_values<float>(rng, vectors * length);
  for (long i = 0; i < length; ++i) x[i * vectors + 3] = 0.0f;
  std::vector<float> y(x.size(), NAN), norms(vectors, NAN), dx(x.size(), NAN);
  kernels::CosineArgs args{x.data(), nullptr, y.data(), norms.data(), nullptr, nullptr, vectors, length, 1, vectors};
  run<kernels::kCosNormalize>(args, vectors);
  args = {y.data(), dy.data(), dx.data(), norms.data(), nullptr, nullptr, vectors, length, 1, vectors};
  run<kernels::kCosNormalizeBackward>(args, vectors);
  for (long v = 0; v < vectors; ++v) {
    double norm = 0, dot = 0;
    for (long i = 0; i < length; ++i) norm += double(x[i * vectors + v]) * x[i * vectors + v];
    norm = std::sqrt(norm);
    ASSERT_NEAR(norms[v], norm, 1e-6) << "vector " << v;
    const bool clamped = !(norm > kernels::kCosineEps);
    const double denom = clamped ? kernels::kCosineEps : norm;
    for (long i = 0; i < length; ++i) dot += x[i * vectors + v] / denom * dy[i * vectors + v];
    for (long i = 0; i < length; ++i) {
      const long at = i * vectors + v;
      ASSERT_NEAR(y[at], x[at] / denom, 1e-6) << "vector " << v << " element " << i;
      const double want = (dy[at] - (clamped ? 0.0 : x[at] / denom * dot)) / denom;
      ASSERT_NEAR(dx[at], want, 1e-5 * (1 + std::abs(want))) << "vector " << v << " element " << i;
    }
  }
}

TEST(CosineEmulation, TemperatureScaleAndItsBackwardMatchTheFormulas) {
  std::mt19937 rng(41);
  const long count = 1000;  // past one block: the backward's strided partial sums
  const std::vector<float> x = uniform_values<float>(rng, count), dy = uniform_values<float>(rng, count);
  for (float t : {1.5f, 5.0f}) {  // below and above log 100
    SCOPED_TRACE(::testing::Message() << "t = " << t);
    const double scale = std::exp(std::min(double(t), kernels::kCosineMaxLogScale));
    std::vector<float> out(count, NAN), dx(count, NAN);
    float grad_t = NAN;
    run<kernels::kCosScale>({x.data(), nullptr, out.data(), nullptr, &t, nullptr, count, 1, 1, 1}, count);
    run<kernels::kCosScaleBackward>({x.data(), dy.data(), dx.data(), nullptr, &t, &grad_t, count, 1, 1, 1}, count);
    double sum = 0;
    for (long i = 0; i < count; ++i) {
      ASSERT_NEAR(out[i], x[i] * scale, 1e-5 * (1 + std::abs(x[i] * scale))) << i;
      ASSERT_NEAR(dx[i], dy[i] * scale, 1e-5 * (1 + std::abs(dy[i] * scale))) << i;
      sum += double(dy[i]) * x[i];
    }
    const double want_t = t <= kernels::kCosineMaxLogScale ? sum * scale : 0.0;
    EXPECT_NEAR(grad_t, want_t, 1e-4 * (1 + std::abs(want_t)));
  }
}

}  // namespace
}  // namespace switchyard
