#include "tests/support/dtype_values.h"

#include <cstdint>
#include <cstring>

#include "core/half.h"

namespace switchyard::testing {

std::string encode_values(const std::vector<double>& values, DType dtype) {
  std::string bytes(values.size() * dtype_size(dtype), '\0');
  for (size_t i = 0; i < values.size(); ++i) {
    const float f = static_cast<float>(values[i]);
    const uint16_t h = dtype == DType::kFloat16 ? double_to_half_bits(values[i]) : double_to_bf16_bits(values[i]);
    if (dtype == DType::kFloat64)
      std::memcpy(&bytes[i * 8], &values[i], 8);
    else if (dtype == DType::kFloat32)
      std::memcpy(&bytes[i * 4], &f, 4);
    else
      std::memcpy(&bytes[i * 2], &h, 2);
  }
  return bytes;
}

std::vector<double> decode_values(const std::string& bytes, DType dtype) {
  std::vector<double> values(bytes.size() / dtype_size(dtype));
  for (size_t i = 0; i < values.size(); ++i) {
    float f = 0;
    uint16_t h = 0;
    if (dtype == DType::kFloat64) {
      std::memcpy(&values[i], &bytes[i * 8], 8);
      continue;
    }
    if (dtype == DType::kFloat32)
      std::memcpy(&f, &bytes[i * 4], 4);
    else
      std::memcpy(&h, &bytes[i * 2], 2);
    values[i] = dtype == DType::kFloat32 ? f : dtype == DType::kFloat16 ? half_bits_to_float(h) : bf16_bits_to_float(h);
  }
  return values;
}

}  // namespace switchyard::testing
