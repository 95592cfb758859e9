// Host bytes of values in a tensor dtype and back (float16/bfloat16 rounded to nearest even).
#pragma once

#include <string>
#include <vector>

#include "jit/dtype.h"

namespace switchyard::testing {

std::string encode_values(const std::vector<double>& values, DType dtype);
std::vector<double> decode_values(const std::string& bytes, DType dtype);

}  // namespace switchyard::testing
