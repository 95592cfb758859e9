#include "bench/random_fill.h"

#include <algorithm>
#include <cstring>
#include <random>
#include <string>

#include "core/error.h"
#include "core/half.h"

namespace switchyard::bench {
namespace {

std::string random_block(size_t bytes, DType dtype, uint32_t seed) {
  const size_t size = dtype_size(dtype);
  std::string block(bytes / size * size, '\0');
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  for (size_t at = 0; at < block.size(); at += size) {
    const double v = uniform(rng);
    if (dtype == DType::kFloat64) {
      std::memcpy(&block[at], &v, 8);
    } else if (dtype == DType::kFloat32) {
      const float f = static_cast<float>(v);
      std::memcpy(&block[at], &f, 4);
    } else {
      SY_CHECK(dtype == DType::kFloat16 || dtype == DType::kBFloat16)
          << "fill_random: " << dtype_name(dtype) << " is not a floating dtype";
      const uint16_t h = dtype == DType::kFloat16 ? double_to_half_bits(v) : double_to_bf16_bits(v);
      std::memcpy(&block[at], &h, 2);
    }
  }
  return block;
}

}  // namespace

void fill_random(Device& device, void* pointer, size_t bytes, DType dtype, uint32_t seed) {
  const std::string block = random_block(std::min<size_t>(bytes, size_t{16} << 20), dtype, seed);
  auto* dst = static_cast<char*>(pointer);
  for (size_t at = 0; at < bytes; at += block.size())
    device.copy_from_host(dst + at, block.data(), std::min(block.size(), bytes - at));
}

}  // namespace switchyard::bench
