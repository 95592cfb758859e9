#include "runtime/model_config.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "jit/kernels/gemm.h"

namespace switchyard {
namespace {

using nlohmann::json;

const std::set<std::string> kKnownFields = {
    "name",         "model_dim",       "hidden_size", "num_experts",        "top_k",       "dtype",
    "is_postscore", "capacity_factor", "description", "normalize_gate",     "expert_type", "activation",
    "has_fc1_bias", "has_fc2_bias",    "fp32_gate",   "allow_tf32",         "training",    "gate_type",
    "proj_dim",     "init_t",          "gates",       "pack_expert_weights"};

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
      SY_CHECK(v.is_number_integer() && v.get<int64_t>() >= 1 && v.get<int64_t>() <= c.num_experts)
          << origin << ": top_k " << v.dump() << " is invalid; expected an integer from 1 to num_experts ("
          << c.num_experts << ")";
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

// One gate from an object with "type" (or "gate_type" at the top level), "proj_dim", "init_t".
ModelConfig::Gate read_gate(const json& doc, const char* type_field, const std::string& origin) {
  ModelConfig::Gate gate;
  if (doc.contains(type_field)) {
    SY_CHECK(doc[type_field].is_string()) << origin << ": " << type_field << " " << doc[type_field].dump()
                                          << " is not a string; expected top or cosine_top";
    gate.type = doc[type_field].get<std::string>();
    SY_CHECK(gate.type == "top" || gate.type == "cosine_top")
        << origin << ": " << type_field << " \"" << gate.type << "\" is unknown; expected top or cosine_top";
  }
  if (doc.contains("proj_dim")) gate.proj_dim = positive_int(doc, "proj_dim", origin);
  // init_t only sets a parameter's first value (no kernel depends on it): checked, not kept.
  if (doc.contains("init_t")) {
    SY_CHECK(doc["init_t"].is_number() && doc["init_t"].get<double>() > 0)
        << origin << ": init_t " << doc["init_t"].dump() << " is not a positive number";
  }
  return gate;
}

// "gates": [{"type": ..., "proj_dim": ..., "init_t": ...}, ...] (Tutel's list), or one gate from
// the top-level "gate_type", "proj_dim", "init_t".
void read_gates(const json& doc, ModelConfig& c, const std::string& origin) {
  const bool single = doc.contains("gate_type") || doc.contains("proj_dim") || doc.contains("init_t");
  if (!doc.contains("gates")) {
    c.gates = {read_gate(doc, "gate_type", origin)};
    return;
  }
  SY_CHECK(!single) << origin << ": \"gates\" and gate_type/proj_dim/init_t both given; use one";
  SY_CHECK(doc["gates"].is_array() && !doc["gates"].empty())
      << origin << ": gates " << doc["gates"].dump() << " is not a non-empty list of gate objects";
  c.gates.clear();
  for (const auto& g : doc["gates"]) {
    SY_CHECK(g.is_object()) << origin << ": gate " << g.dump() << " is not an object";
    for (const auto& [key, value] : g.items())
      SY_CHECK(key == "type" || key == "proj_dim" || key == "init_t")
          << origin << ": a gate has an unknown field \"" << key << "\"; known: type, proj_dim, init_t";
    c.gates.push_back(read_gate(g, "type", origin));
  }
}

void read_expert(const json& doc, ModelConfig& c, const std::string& origin) {
  if (doc.contains("normalize_gate")) {
    c.normalize_gate.clear();
    for (const auto& v : one_or_many(doc, "normalize_gate", origin)) {
      SY_CHECK(v.is_boolean()) << origin << ": normalize_gate " << v.dump() << " is not true or false";
      c.normalize_gate.push_back(v.get<bool>());
    }
  }
  c.expert_type = doc.value("expert_type", c.expert_type);
  SY_CHECK(c.expert_type == "ffn" || c.expert_type == "swiglu")
      << origin << ": expert_type \"" << c.expert_type << "\" is unknown; expected ffn or swiglu";
  c.activation = doc.value("activation", c.activation);
  try {
    kernels::parse_activation(c.activation);
  } catch (const UserError& e) {
    SY_THROW(UserError) << origin << ": " << e.what();
  }
  for (const char* flag :
       {"has_fc1_bias", "has_fc2_bias", "fp32_gate", "allow_tf32", "training", "pack_expert_weights"}) {
    if (!doc.contains(flag)) continue;
    SY_CHECK(doc[flag].is_boolean()) << origin << ": " << flag << " " << doc[flag].dump() << " is not true or false";
  }
  c.has_fc1_bias = doc.value("has_fc1_bias", true);
  c.has_fc2_bias = doc.value("has_fc2_bias", true);
  c.fp32_gate = doc.value("fp32_gate", false);
  c.allow_tf32 = doc.value("allow_tf32", false);
  c.training = doc.value("training", false);
  c.pack_expert_weights = doc.value("pack_expert_weights", false);
  read_gates(doc, c, origin);
}

}  // namespace

ModelConfig ModelConfig::from_json_text(const std::string& text, const std::string& origin) {
  json doc = json::parse(text, nullptr, false);
  SY_CHECK(!doc.is_discarded()) << origin << " is not valid JSON";
  SY_CHECK(doc.is_object()) << origin << ": expected a JSON object at the top level";
  for (const auto& [key, value] : doc.items()) {
    SY_CHECK(kKnownFields.count(key)) << origin << ": unknown field \"" << key
                                      << "\"; known: name, model_dim, hidden_size, num_experts, top_k, dtype, "
                                         "is_postscore, capacity_factor, normalize_gate, expert_type, activation, "
                                         "has_fc1_bias, has_fc2_bias, fp32_gate, allow_tf32, training, gate_type, "
                                         "proj_dim, init_t, gates, pack_expert_weights, description";
  }
  ModelConfig c;
  c.name = doc.value("name", std::string("model"));
  c.model_dim = positive_int(doc, "model_dim", origin);
  c.hidden_size = positive_int(doc, "hidden_size", origin);
  c.num_experts = positive_int(doc, "num_experts", origin);
  read_options(doc, c, origin);
  read_expert(doc, c, origin);
  return c;
}

ModelConfig ModelConfig::load(const std::string& path) {
  std::string text;
  SY_CHECK(fs::try_read_file(path, text)) << "cannot read model config '" << path << "'";
  return from_json_text(text, path);
}

}  // namespace switchyard
