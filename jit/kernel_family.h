// A kernel family: one template per backend plus the typed parameters that specialize it.
// Families register themselves in one table (jit/kernels/); the jit knows them only through it.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "jit/kernel_spec.h"

namespace switchyard {

struct ParamDecl {
  enum class Kind { kDType, kInt, kBool };
  std::string name;
  Kind kind;
  int64_t min_value = 0;  // for kInt
  int64_t max_value = 0;
};

struct KernelFamily {
  std::string name;
  std::vector<ParamDecl> params;  // in template-argument order
  std::string cpu_header;         // include spelling, e.g. switchyard/cpu/dispatch_encode.hpp
  std::string cpu_function;       // qualified template, called as f<...>(args, block, grid)
  std::string cuda_header;
  std::string cuda_function;  // qualified __global__ template taking the args struct
  std::string args_type;      // qualified argument struct (with its qualifiers, e.g. __grid_constant__)
  std::vector<DType> cpu_dtypes;
  std::vector<DType> cuda_dtypes;
  // Extra checks that tie parameters together (e.g. model_dim % vec); throws UserError.
  std::function<void(const KernelSpec&)> check;
};

/// The family with this name; throws UserError listing the known families otherwise.
// NOTE: a string_view, not a const std::string&: GCC 13 flags a reference bound to the result
// of a call whose reference parameter took a temporary (-Wdangling-reference), as a literal does.
const KernelFamily& find_kernel_family(std::string_view name);
const std::vector<KernelFamily>& kernel_families();

ParamValue parse_param_value(const ParamDecl& decl, const std::string& text);
/// Checks a spec against its family: parameter names, kinds, ranges, dtype for the target.
void validate_spec(const KernelSpec& spec);

}  // namespace switchyard
