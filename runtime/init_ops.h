// Random parameter values drawn on the tensor's device by the counter-based generator
// (templates/switchyard/common/init_args.h): element i of the whole tensor depends only on
// (seed, name, i), so CPU and GPU layers with one seed agree, and each rank draws its slice.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/context.h"
#include "runtime/tensor.h"

namespace switchyard {

struct RandomFill {
  uint64_t seed = 1;
  std::string name;     // the tensor's name: distinct names draw independent values
  int64_t first = 0;    // index of out's first element in the whole tensor
  double scale = 1.0;   // uniform: [-scale, scale); normal: the standard deviation
  bool normal = false;  // approximately normal (Irwin-Hall of twelve uniforms), else uniform
};

/// Fills the contiguous `out` (float32/float64 on the CPU; float32/float16/bfloat16 on CUDA),
/// each value computed in double and rounded once to its dtype. UserError naming the tensor for a
/// dtype its device cannot fill or a negative `first`.
void fill_random(Context& context, const Tensor& out, const RandomFill& fill);

}  // namespace switchyard
