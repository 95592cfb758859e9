#include "core/half.h"

#include <cmath>
#include <cstring>

namespace switchyard {

uint16_t float_to_bf16_bits(float value) {
  uint32_t u;
  std::memcpy(&u, &value, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float bf16_bits_to_float(uint16_t bits) {
  uint32_t u = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t float_to_half_bits(float value) {
  _Float16 h = static_cast<_Float16>(value);  // GCC and clang on x86-64 round to nearest even
  uint16_t bits;
  std::memcpy(&bits, &h, 2);
  return bits;
}

float half_bits_to_float(uint16_t bits) {
  _Float16 h;
  std::memcpy(&h, &bits, 2);
  return static_cast<float>(h);
}

float round_to_odd_float(double value) {
  float f = static_cast<float>(value);
  if (std::isnan(value) || static_cast<double>(f) == value) return f;
  if (std::fabs(static_cast<double>(f)) > std::fabs(value)) f = std::nextafter(f, 0.0f);  // now truncated
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u |= 1u;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t double_to_half_bits(double value) {
  return float_to_half_bits(round_to_odd_float(value));
}

uint16_t double_to_bf16_bits(double value) {
  return float_to_bf16_bits(round_to_odd_float(value));
}

}  // namespace switchyard
