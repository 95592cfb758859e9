// float <-> float16 / bfloat16 bit conversions on the host (round to nearest even), for
// initialising and checking half-precision tensors without a compiler's half type.
#pragma once

#include <cstdint>

namespace switchyard {

uint16_t float_to_half_bits(float value);
float half_bits_to_float(uint16_t bits);
uint16_t float_to_bf16_bits(float value);
float bf16_bits_to_float(uint16_t bits);

/// `value` rounded once to float16 / bfloat16 (nearest even), as the CUDA templates'
/// from_double does: through float rounded to odd, which rounding through float to nearest
/// would not be (a value just above a half-way point would land on it and round to even).
uint16_t double_to_half_bits(double value);
uint16_t double_to_bf16_bits(double value);
/// `value` truncated to float with the last bit set when inexact (round to odd): rounding that
/// to any format of at most 22 bits of precision is the single rounding of `value`.
float round_to_odd_float(double value);

}  // namespace switchyard
