// KernelSpec: which template, with which typed parameters, for which target. Hashable and
// printable; its text form is canonical (parameters in the family's declared order).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "jit/dtype.h"
#include "jit/target.h"

namespace switchyard {

using ParamValue = std::variant<DType, int64_t, bool>;

struct KernelSpec {
  std::string family;  // e.g. "dispatch_encode"
  std::vector<std::pair<std::string, ParamValue>> params;
  Target target;

  /// "family<name=value,...>@target", e.g. dispatch_encode<dtype=float32,model_dim=64,...>@cpu
  std::string to_string() const;
  /// Inverse of to_string for a registered family; throws UserError on malformed text.
  static KernelSpec parse(const std::string& text);

  const ParamValue& param(const std::string& name) const;
  DType dtype_param(const std::string& name) const { return std::get<DType>(param(name)); }
  int64_t int_param(const std::string& name) const { return std::get<int64_t>(param(name)); }
  bool bool_param(const std::string& name) const { return std::get<bool>(param(name)); }

  bool operator==(const KernelSpec& other) const = default;
};

struct KernelSpecHash {
  size_t operator()(const KernelSpec& spec) const;
};

std::string param_value_text(const ParamValue& value);

}  // namespace switchyard
