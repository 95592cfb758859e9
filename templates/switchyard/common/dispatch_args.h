// Arguments of the dispatch-encode and combine-decode kernels. Shared verbatim by host code and
// the CPU and CUDA templates, so it includes nothing and uses only fixed-layout types.
#pragma once

namespace switchyard {
namespace kernels {

// Passed by value as the kernel's only parameter (params[0] points at it on both backends).
struct DispatchArgs {
  const void* input;     // encode: tokens [S, M]; decode: expert slots [E, C, M]
  const int* indices;    // [k, S] expert of choice j for token s; negative = skipped
  const int* locations;  // [k, S] slot of choice j inside its expert; >= C = dropped
  const void* gates;     // [k, S] gate values (double for float64 data, float otherwise)
  void* output;          // encode: [E, C, M], zeroed by the caller; decode: [S, M]
  int tokens;            // S
  int capacity;          // C
  int num_experts;       // E
};

}  // namespace kernels
}  // namespace switchyard
