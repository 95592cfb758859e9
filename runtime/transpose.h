// Batched matrix transposes of raw element bytes (weights' transposed copies, resharding).
#pragma once

#include <cstddef>
#include <cstdint>

namespace switchyard {

/// out[b] = in[b]^T for `batch` [rows, cols] matrices of `el`-byte elements (2, 4 or 8).
void transpose_batches(const char* in, char* out, int64_t batch, int64_t rows, int64_t cols, size_t el);

}  // namespace switchyard
