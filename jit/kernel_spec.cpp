#include "jit/kernel_spec.h"

#include "core/error.h"
#include "jit/kernel_family.h"

namespace switchyard {

std::string param_value_text(const ParamValue& value) {
  if (const auto* d = std::get_if<DType>(&value)) return dtype_name(*d);
  if (const auto* b = std::get_if<bool>(&value)) return *b ? "true" : "false";
  return std::to_string(std::get<int64_t>(value));
}

std::string KernelSpec::to_string() const {
  std::string text = family + "<";
  for (size_t i = 0; i < params.size(); ++i) {
    if (i > 0) text += ",";
    text += params[i].first + "=" + param_value_text(params[i].second);
  }
  return text + ">@" + target.to_string();
}

const ParamValue& KernelSpec::param(const std::string& name) const {
  for (const auto& [key, value] : params) {
    if (key == name) return value;
  }
  SY_THROW(InternalError) << "kernel spec " << to_string() << " has no parameter '" << name << "'";
}

KernelSpec KernelSpec::parse(const std::string& text) {
  size_t open = text.find('<');
  size_t close = text.rfind(">@");
  SY_CHECK(open != std::string::npos && close != std::string::npos && close > open)
      << "malformed kernel spec '" << text << "'; expected family<name=value,...>@target";
  KernelSpec spec;
  spec.family = text.substr(0, open);
  spec.target = Target::parse(text.substr(close + 2));
  const KernelFamily& family = find_kernel_family(spec.family);
  std::string body = text.substr(open + 1, close - open - 1);
  size_t pos = 0;
  for (const auto& decl : family.params) {
    size_t comma = body.find(',', pos);
    std::string item = body.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    size_t eq = item.find('=');
    SY_CHECK(eq != std::string::npos && item.substr(0, eq) == decl.name)
        << "kernel spec '" << text << "': expected parameter '" << decl.name << "' at '" << item << "'";
    spec.params.emplace_back(decl.name, parse_param_value(decl, item.substr(eq + 1)));
    pos = comma == std::string::npos ? body.size() : comma + 1;
  }
  SY_CHECK(pos >= body.size()) << "kernel spec '" << text << "' has extra parameters after '" << body.substr(0, pos)
                               << "'";
  return spec;
}

size_t KernelSpecHash::operator()(const KernelSpec& spec) const {
  // NOTE: combines field hashes without building the text: this runs on every in-memory lookup.
  size_t h = std::hash<std::string>{}(spec.family);
  auto mix = [&h](size_t v) { h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2); };
  for (const auto& [name, value] : spec.params) {
    mix(std::hash<std::string>{}(name));
    if (const auto* d = std::get_if<DType>(&value))
      mix(static_cast<size_t>(*d) + 1000);
    else if (const auto* b = std::get_if<bool>(&value))
      mix(*b ? 2001 : 2000);
    else
      mix(std::hash<int64_t>{}(std::get<int64_t>(value)));
  }
  mix(static_cast<size_t>(spec.target.kind) * 100000 + static_cast<size_t>(spec.target.sm) * 2 +
      spec.target.arch_specific);
  return h;
}

}  // namespace switchyard
