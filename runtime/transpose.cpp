#include "runtime/transpose.h"

#include <algorithm>

namespace switchyard {
namespace {

// out[b] = in[b]^T for [rows, cols] matrices of `el`-byte elements, in cache-sized blocks.
template <typename Word>
void transpose_words(const Word* in, Word* out, int64_t batch, int64_t rows, int64_t cols) {
  constexpr int64_t kBlock = 32;
  for (int64_t b = 0; b < batch; ++b) {
    const Word* src = in + b * rows * cols;
    Word* dst = out + b * rows * cols;
    for (int64_t r0 = 0; r0 < rows; r0 += kBlock)
      for (int64_t c0 = 0; c0 < cols; c0 += kBlock)
        for (int64_t r = r0; r < std::min(rows, r0 + kBlock); ++r)
          for (int64_t c = c0; c < std::min(cols, c0 + kBlock); ++c) dst[c * rows + r] = src[r * cols + c];
  }
}

}  // namespace

void transpose_batches(const char* in, char* out, int64_t batch, int64_t rows, int64_t cols, size_t el) {
  switch (el) {
    case 2:
      return transpose_words(reinterpret_cast<const uint16_t*>(in), reinterpret_cast<uint16_t*>(out), batch, rows,
                             cols);
    case 4:
      return transpose_words(reinterpret_cast<const uint32_t*>(in), reinterpret_cast<uint32_t*>(out), batch, rows,
                             cols);
    default:
      return transpose_words(reinterpret_cast<const uint64_t*>(in), reinterpret_cast<uint64_t*>(out), batch, rows,
                             cols);
  }
}

}  // namespace switchyard
