// Random values for benchmark inputs on any device: timing on zeros can flatter a kernel (an
// H200 ran a bf16 product 13% faster on zeros) and hides unwritten outputs.
#pragma once

#include <cstddef>
#include <cstdint>

#include "jit/dtype.h"
#include "runtime/device.h"

namespace switchyard::bench {

/// Fills `bytes` at `pointer` on `device` with values uniform in [-1, 1) of `dtype`: a 16 MiB
/// block drawn once from `seed`, repeated over the buffer.
void fill_random(Device& device, void* pointer, size_t bytes, DType dtype, uint32_t seed);

}  // namespace switchyard::bench
