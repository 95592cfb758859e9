// The element-wise family's CUDA transpose (templates/switchyard/cuda/elementwise.cuh) run on the
// host's emulation of CUDA threads with its family's launch: what the emulation tests use where a
// kernel reads operands transposed ahead, and what the transpose's own test checks.
#pragma once

#include <vector>

namespace switchyard::testing {

/// `batch` float32 [rows, cols] matrices at x, each as [cols, padded] (padded >= rows): zeros past
/// each batch's first min(counts[b], rows) rows (all rows where counts is null).
std::vector<float> emulated_transpose(const void* x, const int* counts, int batch, int rows, int cols, int padded);

}  // namespace switchyard::testing
