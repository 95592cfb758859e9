// Arguments of the dispatch-encode and combine-decode kernels. Shared verbatim by host code and
// the CPU and CUDA templates, so it includes nothing and uses only fixed-layout types.
#pragma once

#include <switchyard/common/macros.h>

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
  // Encode on the CPU: [E * C] flags, 1 for rows some kept choice writes. When given, each block
  // also zeroes the unused rows of its share, so the output needs no separate zero fill (each
  // row is written exactly once). Null: the caller zeroed the output.
  const unsigned char* used_rows;
  // gate_grad: the [S, M] operand whose rows are dotted with the slots (output [k, S] of gate
  // dtype). Unused by encode and decode.
  const void* other;
};

// Tokens of one gate_grad block on CUDA: a warp per token.
constexpr int kGateGradTokensPerBlock = 4;

// Row (expert * C + slot) of the [E * C, M] buffer that choice j of token s uses, or -1 when
// the choice is skipped: a negative or out-of-range expert, or a slot outside [0, C).
SY_HOST_DEVICE long dispatch_row(const DispatchArgs& args, int j, long s) {
  const int expert = args.indices[j * static_cast<long>(args.tokens) + s];
  const int slot = args.locations[j * static_cast<long>(args.tokens) + s];
  if (expert < 0 || expert >= args.num_experts || slot < 0 || slot >= args.capacity) return -1;
  return static_cast<long>(expert) * args.capacity + slot;
}

}  // namespace kernels
}  // namespace switchyard
