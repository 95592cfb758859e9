// Parameter initialization on the CPU against an independent statement of the documented
// generator (libxxhash's XXH3-64 of the name, splitmix64's published finalizer; uniform from 53
// bits; normal from twelve 32-bit uniforms), bit for bit; slices agree with the whole tensor;
// the distributions have the asked bounds and spread; bad requests are clear errors. The GPU
// agreement is in gpu_device_ops_test.
#include <gtest/gtest.h>

#define XXH_INLINE_ALL  // the library itself, header-only: an oracle independent of core/hash
#include <xxhash.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "runtime/init_ops.h"
#include "runtime/moe_layer.h"

namespace switchyard {
namespace {

uint64_t splitmix64_finalizer(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// The documented value of element i of tensor `name` (docs/architecture.md, "initialization").
double documented_value(uint64_t seed, const std::string& name, int64_t i, double scale, bool normal) {
  const uint64_t key = splitmix64_finalizer(seed ^ splitmix64_finalizer(XXH3_64bits(name.data(), name.size())));
  auto bits = [&](int j) { return splitmix64_finalizer(key + splitmix64_finalizer(uint64_t(i) * 8 + j + 1)); };
  if (!normal) return (2.0 * std::ldexp(static_cast<double>(bits(0) >> 11), -53) - 1.0) * scale;
  int64_t sum = 0;
  for (int j = 0; j < 6; ++j) sum += static_cast<int64_t>(bits(j) & 0xffffffffu) + static_cast<int64_t>(bits(j) >> 32);
  return std::ldexp(static_cast<double>(sum - 6 * (int64_t{1} << 32)), -32) * scale;
}

template <typename T>
std::vector<T> drawn(const RandomFill& fill, int64_t count) {
  std::vector<T> out(static_cast<size_t>(count), T(-99));
  const DType dt = sizeof(T) == 8 ? DType::kFloat64 : DType::kFloat32;
  fill_random(Context::global(), Tensor(out.data(), dt, {count}), fill);
  return out;
}

TEST(InitRandom, CpuValuesAreTheDocumentedGeneratorBitForBit) {
  for (bool normal : {false, true}) {
    SCOPED_TRACE(normal ? "normal" : "uniform");
    const RandomFill fill{.seed = 42, .name = "experts.batched_fc1_w", .first = 0, .scale = 0.125, .normal = normal};
    const auto wide = drawn<double>(fill, 5000);
    const auto narrow = drawn<float>(fill, 5000);
    for (int64_t i = 0; i < 5000; ++i) {
      const double want = documented_value(42, fill.name, i, 0.125, normal);
      ASSERT_EQ(wide[i], want) << i;
      ASSERT_EQ(narrow[i], static_cast<float>(want)) << i;
    }
  }
}

// The 16-bit value nearest `d` (ties to even), from the double's bits: `bits` significant bits,
// exponent bias `bias`. Only for d in the format's normal range, or 0.
uint16_t nearest_narrow(double d, int bits, int bias) {
  if (d == 0) return std::signbit(d) ? 0x8000 : 0;
  const uint64_t u = std::bit_cast<uint64_t>(d);
  int exponent = static_cast<int>((u >> 52) & 0x7ff) - 1023;
  const uint64_t mantissa = (u & ((uint64_t{1} << 52) - 1)) | (uint64_t{1} << 52);
  const int dropped = 53 - bits;
  uint64_t kept = mantissa >> dropped;
  const uint64_t rest = mantissa & ((uint64_t{1} << dropped) - 1), half = uint64_t{1} << (dropped - 1);
  if (rest > half || (rest == half && (kept & 1))) ++kept;
  if (kept == (uint64_t{1} << bits)) {
    kept >>= 1;
    ++exponent;
  }
  const uint64_t fraction = kept & ((uint64_t{1} << (bits - 1)) - 1);
  return static_cast<uint16_t>((u >> 63) << 15 | static_cast<uint64_t>(exponent + bias) << (bits - 1) | fraction);
}

// 16-bit tensors hold the documented double rounded once (not through float), in every block
// of the fill and its vector tails (an odd count).
TEST(InitRandom, NarrowDtypesHoldTheDocumentedValueRoundedOnce) {
  const int64_t count = (1 << 20) + 3;  // a million draws: a few fall where rounding through float would differ
  for (bool normal : {false, true}) {
    SCOPED_TRACE(normal ? "normal" : "uniform");
    const RandomFill fill{.seed = 9, .name = "experts.batched_fc1_w", .first = 0, .scale = 0.125, .normal = normal};
    for (DType dtype : {DType::kBFloat16, DType::kFloat16}) {
      SCOPED_TRACE(dtype_name(dtype));
      const bool bf16 = dtype == DType::kBFloat16;
      std::vector<uint16_t> out(count, 0xffff);
      fill_random(Context::global(), Tensor(out.data(), dtype, {count}), fill);
      for (int64_t i = 0; i < count; ++i) {
        const double want = documented_value(9, fill.name, i, 0.125, normal);
        if (!bf16 && std::fabs(want) < 0x1p-14) continue;  // float16 subnormals: not this oracle's range
        ASSERT_EQ(out[i], bf16 ? nearest_narrow(want, 8, 127) : nearest_narrow(want, 11, 15)) << i << ": " << want;
      }
    }
  }
}

TEST(InitRandom, SlicesAreTheWholeTensorsValues) {
  const RandomFill whole{.seed = 7, .name = "w", .scale = 1.0};
  const auto all = drawn<float>(whole, 1000);
  RandomFill part = whole;
  part.first = 613;
  const auto tail = drawn<float>(part, 387);
  for (int64_t i = 0; i < 387; ++i) ASSERT_EQ(tail[i], all[613 + i]) << i;
  RandomFill other = whole;
  other.name = "v";
  EXPECT_NE(drawn<float>(other, 1000), all) << "another tensor's name draws other values";
  other = whole;
  other.seed = 8;
  EXPECT_NE(drawn<float>(other, 1000), all) << "another seed draws other values";
}

TEST(InitRandom, DistributionsHaveTheirBoundsAndSpread) {
  const int64_t n = 200000;
  const auto uniform = drawn<double>({.seed = 3, .name = "u", .scale = 0.5}, n);
  const auto normal = drawn<double>({.seed = 3, .name = "n", .scale = 0.01, .normal = true}, n);
  double mean_u = 0, var_u = 0, mean_n = 0, var_n = 0;
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_GE(uniform[i], -0.5);
    ASSERT_LT(uniform[i], 0.5);
    mean_u += uniform[i] / n;
    var_u += uniform[i] * uniform[i] / n;
    mean_n += normal[i] / n;
    var_n += normal[i] * normal[i] / n;
  }
  EXPECT_NEAR(mean_u, 0, 0.005);
  EXPECT_NEAR(std::sqrt(var_u), 0.5 / std::sqrt(3.0), 0.005);  // uniform on [-a, a): a / sqrt(3)
  EXPECT_NEAR(mean_n, 0, 1e-4);
  EXPECT_NEAR(std::sqrt(var_n), 0.01, 1e-4);
}

// Construction draws the weights on the device: a layer's parameters are the documented values
// of their names (uniform within 1/sqrt(fan-in)), the same whatever else the layer holds.
TEST(InitRandom, LayerParametersAreTheDocumentedValues) {
  MoeLayerConfig config;
  config.model_dim = 16;
  config.hidden_size = 32;
  config.num_experts = 2;
  config.dtype = DType::kFloat64;
  MoeLayer layer(Context::global(), Context::global().cpu(), config);
  layer.init_parameters(11);
  const Tensor fc2 = layer.parameter("experts.batched_fc2_w");
  const double* values = fc2.data_as<const double>();
  for (int64_t i = 0; i < fc2.numel(); ++i)
    ASSERT_EQ(values[i], documented_value(11, "experts.batched_fc2_w", i, 1.0 / std::sqrt(32.0), false)) << i;
}

TEST(InitRandom, BadRequestsAreClearErrors) {
  std::vector<int> ints(4);
  EXPECT_THROW(fill_random(Context::global(), Tensor(ints.data(), DType::kInt32, {4}), {}), UserError);
  std::vector<float> out(4);
  EXPECT_THROW(
      fill_random(Context::global(), Tensor(out.data(), DType::kFloat32, {4}), {.seed = 1, .name = "w", .first = -1}),
      UserError);
}

}  // namespace
}  // namespace switchyard
