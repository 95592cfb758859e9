#include "cache/cache_key.h"

#include <nlohmann/json.hpp>

#include <map>

#include "core/hash.h"

namespace switchyard::cache {

void KeyParts::add(const std::string& name, const std::string& value) {
  // NOTE: values over 200 bytes (sources, headers) are recorded by content hash only, which is
  // all the key needs and keeps meta.json small.
  parts.emplace_back(name, value.size() > 200 ? "xxh3:" + hash128_hex(value) : value);
}

std::string KeyParts::key() const {
  std::string text = "switchyard-cache-format=" + std::to_string(kFormatVersion) + "\n";
  for (const auto& [name, value] : parts) text += name + "=" + value + "\n";
  return hash128_hex(text);
}

nlohmann::json KeyParts::to_json() const {
  nlohmann::json json = nlohmann::json::array();
  for (const auto& [name, value] : parts) json.push_back({name, value});
  return json;
}

KeyParts KeyParts::from_json(const nlohmann::json& json) {
  KeyParts result;
  for (const auto& item : json) result.parts.emplace_back(item.at(0).get<std::string>(), item.at(1).get<std::string>());
  return result;
}

std::vector<std::string> KeyParts::differences(const KeyParts& a, const KeyParts& b) {
  std::map<std::string, std::string> left(a.parts.begin(), a.parts.end());
  std::map<std::string, std::string> right(b.parts.begin(), b.parts.end());
  std::vector<std::string> names;
  for (const auto& [name, value] : left) {
    auto it = right.find(name);
    if (it == right.end() || it->second != value) names.push_back(name);
  }
  for (const auto& [name, value] : right) {
    if (left.find(name) == left.end()) names.push_back(name);
  }
  return names;
}

}  // namespace switchyard::cache
