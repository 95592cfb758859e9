// Arguments of the element-wise cast kernel, shared by host code and templates.
#pragma once

namespace switchyard {
namespace kernels {

struct CastArgs {
  const void* input;
  void* output;
  long count;
};

}  // namespace kernels
}  // namespace switchyard
