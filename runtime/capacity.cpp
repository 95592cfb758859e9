#include "runtime/capacity.h"

#include <algorithm>
#include <cmath>

namespace switchyard {

int64_t moe_capacity(int64_t tokens, int64_t experts, int64_t top_k, double capacity_factor, int64_t max_count,
                     int64_t alignment) {
  const int64_t spe = (tokens + experts - 1) / experts;
  int64_t capacity = 0;
  if (capacity_factor > 0) {
    capacity = top_k * static_cast<int64_t>(std::floor(capacity_factor * static_cast<double>(spe)));
  } else if (capacity_factor == 0) {
    capacity = max_count;
  } else {
    capacity =
        std::min(max_count, top_k * static_cast<int64_t>(std::floor(-capacity_factor * static_cast<double>(spe))));
  }
  if (alignment > 1 && capacity % alignment != 0) capacity = (capacity / alignment + 1) * alignment;
  return capacity;
}

int64_t moe_alignment(int64_t sharded_count, int64_t overlap_degree, int64_t megablocks_size) {
  const int64_t mega = std::max<int64_t>(megablocks_size, 1);
  int64_t alignment = (sharded_count * overlap_degree + mega - 1) / mega * mega;
  if (alignment > 256) alignment = (alignment + 127) / 128 * 128;
  return alignment;
}

}  // namespace switchyard
