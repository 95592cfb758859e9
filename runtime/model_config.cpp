#include "runtime/model_config.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "jit/kernel_family.h"
#include "jit/kernels/dispatch.h"

namespace switchyard {
namespace {

using nlohmann::json;

const std::set<std::string> kKnownFields = {"name",  "model_dim",    "hidden_size",     "num_experts", "top_k",
                                            "dtype", "is_postscore", "capacity_factor", "description"};

// A field that may be one value or a list of values; returns the list.
std::vector<json> one_or_many(const json& doc, const char* field, const std::string& origin) {
  const json& value = doc.at(field);
  std::vector<json> items = value.is_array() ? value.get<std::vector<json>>() : std::vector<json>{value};
  SY_CHECK(!items.empty()) << origin << ": \"" << field << "\" is an empty list; expected at least one value";
  return items;
}

int64_t positive_int(const json& doc, const char* field, const std::string& origin) {
  SY_CHECK(doc.contains(field)) << origin << ": missing required field \"" << field << "\"";
  const json& v = doc[field];
  SY_CHECK(v.is_number_integer() && v.get<int64_t>() >= 1 && v.get<int64_t>() <= (1 << 20))
      << origin << ": \"" << field << "\" is " << v.dump() << "; expected an integer from 1 to 1048576";
  return v.get<int64_t>();
}

void read_options(const json& doc, ModelConfig& c, const std::string& origin) {
  if (doc.contains("top_k")) {
    c.top_k.clear();
    for (const auto& v : one_or_many(doc, "top_k", origin)) {
      SY_CHECK(v.is_number_integer() && v.get<int64_t>() >= 1 &&
               v.get<int64_t>() <= std::min<int64_t>(c.num_experts, 64))
          << origin << ": top_k " << v.dump() << " is invalid; expected an integer from 1 to num_experts ("
          << c.num_experts << ", at most 64)";
      c.top_k.push_back(v.get<int64_t>());
    }
  }
  if (doc.contains("dtype")) {
    c.dtypes.clear();
    for (const auto& v : one_or_many(doc, "dtype", origin)) {
      SY_CHECK(v.is_string()) << origin << ": dtype " << v.dump() << " is not a string";
      try {
        c.dtypes.push_back(parse_dtype(v.get<std::string>()));
      } catch (const UserError& e) {
        SY_THROW(UserError) << origin << ": " << e.what();
      }
      SY_CHECK(c.dtypes.back() != DType::kInt32) << origin << ": dtype int32 is not a data type for a layer";
    }
  }
  if (doc.contains("is_postscore")) {
    c.is_postscore.clear();
    for (const auto& v : one_or_many(doc, "is_postscore", origin)) {
      SY_CHECK(v.is_boolean()) << origin << ": is_postscore " << v.dump() << " is not true or false";
      c.is_postscore.push_back(v.get<bool>());
    }
  }
  if (doc.contains("capacity_factor")) {
    c.capacity_factor.clear();
    for (const auto& v : one_or_many(doc, "capacity_factor", origin)) {
      SY_CHECK(v.is_number() && std::isfinite(v.get<double>()))
          << origin << ": capacity_factor " << v.dump() << " is not a finite number";
      c.capacity_factor.push_back(v.get<double>());
    }
  }
}

}  // namespace

ModelConfig ModelConfig::from_json_text(const std::string& text, const std::string& origin) {
  json doc = json::parse(text, nullptr, false);
  SY_CHECK(!doc.is_discarded()) << origin << " is not valid JSON";
  SY_CHECK(doc.is_object()) << origin << ": expected a JSON object at the top level";
  for (const auto& [key, value] : doc.items()) {
    SY_CHECK(kKnownFields.count(key)) << origin << ": unknown field \"" << key
                                      << "\"; known: name, model_dim, hidden_size, num_experts, top_k, dtype, "
                                         "is_postscore, capacity_factor, description";
  }
  ModelConfig c;
  c.name = doc.value("name", std::string("model"));
  c.model_dim = positive_int(doc, "model_dim", origin);
  c.hidden_size = positive_int(doc, "hidden_size", origin);
  c.num_experts = positive_int(doc, "num_experts", origin);
  read_options(doc, c, origin);
  return c;
}

ModelConfig ModelConfig::load(const std::string& path) {
  std::string text;
  SY_CHECK(fs::try_read_file(path, text)) << "cannot read model config '" << path << "'";
  return from_json_text(text, path);
}

KernelSet kernel_set(const ModelConfig& config, const Target& target) {
  KernelSet set;
  std::set<std::string> seen;
  const KernelFamily& family = find_kernel_family("dispatch_encode");
  const auto& supported = target.is_cpu() ? family.cpu_dtypes : family.cuda_dtypes;
  for (DType dtype : config.dtypes) {
    if (std::find(supported.begin(), supported.end(), dtype) == supported.end()) {
      set.skipped.push_back(std::string(dtype_name(dtype)) + " on " + target.to_string() + ": not supported by the " +
                            (target.is_cpu() ? "CPU" : "CUDA") + " templates");
      continue;
    }
    for (int64_t k : config.top_k) {
      for (bool postscore : config.is_postscore) {
        for (bool encode : {true, false}) {
          KernelSpec spec = kernels::dispatch_spec(encode, dtype, config.model_dim, k, postscore, target);
          if (seen.insert(spec.to_string()).second) set.specs.push_back(std::move(spec));
        }
      }
    }
  }
  SY_CHECK(!set.specs.empty()) << "model '" << config.name << "' has no kernel for target " << target.to_string()
                               << ": " << (set.skipped.empty() ? "no dtype" : set.skipped.front());
  return set;
}

}  // namespace switchyard
