// Host conversions to float16 and bfloat16 round once to nearest even, also from double values
// that rounding through float would move onto a half-way point. The oracle searches every
// 16-bit pattern for the nearest value (ties to the even pattern) and shares no code with core/.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include "core/half.h"

namespace switchyard {
namespace {

// Every finite non-negative value of a 16-bit format, ascending, with its bits.
std::vector<std::pair<double, uint16_t>> finite_values(float (*decode)(uint16_t)) {
  std::vector<std::pair<double, uint16_t>> table;
  for (uint32_t bits = 0; bits < 0x8000u; ++bits) {
    const double v = decode(static_cast<uint16_t>(bits));
    if (std::isfinite(v)) table.emplace_back(v, static_cast<uint16_t>(bits));
  }
  std::sort(table.begin(), table.end());
  return table;
}

uint16_t nearest_even(const std::vector<std::pair<double, uint16_t>>& table, double v) {
  const double a = std::fabs(v);
  auto hi = std::lower_bound(table.begin(), table.end(), std::make_pair(a, uint16_t{0}));
  auto lo = hi == table.begin() ? hi : hi - 1;
  if (hi == table.end()) hi = lo;
  const double dlo = a - lo->first, dhi = hi->first - a;
  uint16_t bits = dlo < dhi ? lo->second : dhi < dlo ? hi->second : ((lo->second & 1) ? hi->second : lo->second);
  return static_cast<uint16_t>(bits | (v < 0 ? 0x8000u : 0u));
}

void expect_single_rounding(float (*decode)(uint16_t), uint16_t (*convert)(double), const char* name) {
  const auto table = finite_values(decode);
  std::mt19937 rng(17);
  std::uniform_int_distribution<size_t> pick(1, table.size() - 2);
  std::uniform_real_distribution<double> frac(0.0, 1.0);
  size_t checked = 0;
  for (int trial = 0; trial < 20000; ++trial) {
    const size_t i = pick(rng);
    const double mid = (table[i].first + table[i + 1].first) / 2;  // exact in double
    const double ulp = table[i + 1].first - table[i].first;
    // The half-way point, values a hair either side of it (below float's resolution there), and
    // a value anywhere between the two neighbours; each with both signs.
    for (double v : {mid, mid + ulp * 0x1p-30, mid - ulp * 0x1p-30, table[i].first + ulp * frac(rng)}) {
      for (double sign : {1.0, -1.0}) {
        ASSERT_EQ(convert(sign * v), nearest_even(table, sign * v)) << name << " of " << sign * v;
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 160000u);
}

TEST(Half, DoubleToFloat16RoundsOnceToNearestEven) {
  expect_single_rounding(half_bits_to_float, double_to_half_bits, "float16");
}

TEST(Half, DoubleToBfloat16RoundsOnceToNearestEven) {
  expect_single_rounding(bf16_bits_to_float, double_to_bf16_bits, "bfloat16");
}

TEST(Half, HalvingAnOddSubnormalIsATieToEven) {
  // 1985 * 2^-24 (a float16 subnormal) halved is 992.5 * 2^-24: nearest even is 992 * 2^-24.
  const double x = 1985 * 0x1p-24;
  EXPECT_EQ(half_bits_to_float(double_to_half_bits(x * 0.5)), 992 * 0x1p-24);
  EXPECT_EQ(half_bits_to_float(double_to_half_bits(1987 * 0x1p-24 * 0.5)), 994 * 0x1p-24);
}

TEST(Half, JustAboveAHalfWayPointRoundsUpWhereRoundingThroughFloatWouldNot) {
  const double v = 1.0 + 0x1p-11 + 0x1p-30;  // float rounds this to 1 + 2^-11, the half-way point
  EXPECT_EQ(half_bits_to_float(float_to_half_bits(static_cast<float>(v))), 1.0) << "double rounding";
  EXPECT_EQ(half_bits_to_float(double_to_half_bits(v)), 1.0 + 0x1p-10);
  EXPECT_EQ(bf16_bits_to_float(double_to_bf16_bits(1.0 + 0x1p-8 + 0x1p-30)), 1.0 + 0x1p-7);
}

TEST(Half, SpecialValuesSurvive) {
  EXPECT_TRUE(std::isnan(half_bits_to_float(double_to_half_bits(std::nan("")))));
  EXPECT_TRUE(std::isnan(bf16_bits_to_float(double_to_bf16_bits(std::nan("")))));
  EXPECT_EQ(half_bits_to_float(double_to_half_bits(1e300)), INFINITY);
  EXPECT_EQ(bf16_bits_to_float(double_to_bf16_bits(-1e300)), -INFINITY);
  EXPECT_EQ(half_bits_to_float(double_to_half_bits(1e-300)), 0.0);
  EXPECT_EQ(double_to_half_bits(-1e-300), 0x8000u) << "negative zero keeps its sign";
  EXPECT_EQ(half_bits_to_float(double_to_half_bits(65504.0)), 65504.0f);
}

}  // namespace
}  // namespace switchyard
