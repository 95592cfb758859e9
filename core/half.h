// float <-> float16 / bfloat16 bit conversions on the host (round to nearest even), for
// initialising and checking half-precision tensors without a compiler's half type.
#pragma once

#include <cstdint>

namespace switchyard {

uint16_t float_to_half_bits(float value);
float half_bits_to_float(uint16_t bits);
uint16_t float_to_bf16_bits(float value);
float bf16_bits_to_float(uint16_t bits);

}  // namespace switchyard
