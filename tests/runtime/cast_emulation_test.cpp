// The CUDA dtype conversion (templates/switchyard/cuda/cast.cuh: the fp32 gate's copies of a
// 16-bit layer's activations and gradients) run on the host through tests/support/cuda_emulation.h
// with its family's launch: every pair of float32, float16 and bfloat16 gives the host's rounding
// (core/half.h: to nearest, ties to even; overflow to infinity, float16's subnormals) bit for bit,
// and NaN stays NaN.
#include "tests/support/cuda_emulation.h"  // before the templates

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <switchyard/cuda/cast.cuh>

#include "core/half.h"
#include "jit/kernels/cast.h"

namespace switchyard {
namespace {

// Values that exercise each rounding: random magnitudes over float16's and bfloat16's ranges,
// exact ties of both, float16's subnormals and overflow, zeros, infinities and NaN.
std::vector<float> interesting_floats() {
  std::vector<float> v = {0.0f,
                          -0.0f,
                          1.0f + 0x1p-11f,
                          1.0f + 3 * 0x1p-11f,
                          1.0f + 0x1p-8f,
                          1.0f + 3 * 0x1p-8f,
                          0x1p-20f,
                          -0x1p-24f,
                          0x1p-25f,
                          65504.0f,
                          65520.0f,
                          1e30f,
                          INFINITY,
                          -INFINITY,
                          NAN};
  std::mt19937 rng(61);
  std::uniform_real_distribution<float> exponent(-30.0f, 30.0f);
  std::bernoulli_distribution negative(0.5);
  for (int i = 0; i < 2000; ++i) v.push_back((negative(rng) ? -1.0f : 1.0f) * std::exp2(exponent(rng)));
  return v;
}

uint32_t bits_of(DType dt, float value) {
  if (dt == DType::kFloat16) return float_to_half_bits(value);
  if (dt == DType::kBFloat16) return float_to_bf16_bits(value);
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  return bits;
}

float value_of(DType dt, uint32_t bits) {
  if (dt == DType::kFloat16) return half_bits_to_float(static_cast<uint16_t>(bits));
  if (dt == DType::kBFloat16) return bf16_bits_to_float(static_cast<uint16_t>(bits));
  float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

// The input's bits in `From` (the host's rounding of the floats), then From -> To on the emulated GPU.
template <typename From, typename To>
void expect_host_rounding(DType from, DType to) {
  SCOPED_TRACE(::testing::Message() << dtype_name(from) << " -> " << dtype_name(to));
  const std::vector<float> floats = interesting_floats();
  std::vector<From> input(floats.size());
  for (size_t i = 0; i < floats.size(); ++i) {
    const uint32_t bits = bits_of(from, floats[i]);
    std::memcpy(&input[i], &bits, sizeof(From));
  }
  std::vector<To> output(floats.size());
  const kernels::CastArgs args{input.data(), output.data(), static_cast<long>(input.size())};
  emulation::launch(kernels::cast_launch_config(kernels::cast_spec(from, to, Target::cuda(90)), args.count, 132),
                    [&] { cuda::cast<From, To>(args); });
  for (size_t i = 0; i < floats.size(); ++i) {
    uint32_t in = 0, got = 0;
    std::memcpy(&in, &input[i], sizeof(From));
    std::memcpy(&got, &output[i], sizeof(To));
    const float exact = value_of(from, in);
    if (std::isnan(exact)) {
      EXPECT_TRUE(std::isnan(value_of(to, got))) << "NaN stays NaN, element " << i;
      continue;
    }
    ASSERT_EQ(got, bits_of(to, exact)) << "element " << i << ": " << exact;
  }
}

TEST(CastEmulation, EveryPairRoundsAsTheHost) {
  expect_host_rounding<float, cuda::half_t>(DType::kFloat32, DType::kFloat16);
  expect_host_rounding<float, cuda::bf16_t>(DType::kFloat32, DType::kBFloat16);
  expect_host_rounding<cuda::half_t, float>(DType::kFloat16, DType::kFloat32);
  expect_host_rounding<cuda::bf16_t, float>(DType::kBFloat16, DType::kFloat32);
  expect_host_rounding<cuda::half_t, cuda::bf16_t>(DType::kFloat16, DType::kBFloat16);
  expect_host_rounding<cuda::bf16_t, cuda::half_t>(DType::kBFloat16, DType::kFloat16);
}

}  // namespace
}  // namespace switchyard
