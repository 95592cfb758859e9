// Cache keys: a hash over named components (format version, spec, generated source, each
// template header, compiler identity, target, options). The components are kept beside the
// entry, so a miss can be explained by the component that differs.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace switchyard::cache {

/// Bump when the entry layout or key composition changes: old entries then simply miss.
inline constexpr int kFormatVersion = 1;

struct KeyParts {
  // (name, value) in insertion order; long values are stored by their hash.
  std::vector<std::pair<std::string, std::string>> parts;

  void add(const std::string& name, const std::string& value);
  /// 32 hex digits; no absolute path or time enters it unless a part carries one.
  std::string key() const;
  nlohmann::json to_json() const;
  static KeyParts from_json(const nlohmann::json& json);
  /// Names of the parts whose values differ between the two (for "why did this miss").
  static std::vector<std::string> differences(const KeyParts& a, const KeyParts& b);
};

}  // namespace switchyard::cache
