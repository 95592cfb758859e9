// The JSON readers of moe_layer.h: a layer's config and forward options from JSON objects with
// Tutel's field names.
#include <nlohmann/json.hpp>

#include <functional>
#include <map>

#include "core/error.h"
#include "jit/kernels/gemm.h"
#include "runtime/moe_layer.h"

namespace switchyard {
namespace {

// Reads each field of `object` through its setter; an unknown field is an error naming it.
using Setters = std::map<std::string, std::function<void(const nlohmann::json&)>>;

void apply(const nlohmann::json& object, const Setters& setters, const char* what) {
  SY_CHECK(object.is_object()) << what << " is " << object.dump() << "; expected a JSON object";
  for (const auto& [key, value] : object.items()) {
    auto it = setters.find(key);
    if (it == setters.end()) {
      std::string known;
      for (const auto& [name, setter] : setters) known += (known.empty() ? "" : ", ") + name;
      SY_THROW(UserError) << what << " has an unknown field \"" << key << "\"; known: " << known;
    }
    try {
      it->second(value);
    } catch (const nlohmann::json::exception&) {
      SY_THROW(UserError) << what << " field \"" << key << "\" is " << value.dump() << "; wrong type";
    }
  }
}

template <typename T>
std::function<void(const nlohmann::json&)> set(T& field) {
  return [&field](const nlohmann::json& v) { field = v.get<T>(); };
}

nlohmann::json parse_json_object(const std::string& text, const char* what) {
  nlohmann::json parsed = nlohmann::json::parse(text, nullptr, false);
  SY_CHECK(!parsed.is_discarded() && parsed.is_object()) << what << " is not a JSON object: " << text;
  return parsed;
}

// Tutel's gate dict: {"type": "top" | "cosine_top", "proj_dim": P, "init_t": t}.
GateConfig gate_from_json(const nlohmann::json& object) {
  GateConfig gate;
  std::string type = "top";
  Setters setters = {{"type", set(type)}, {"proj_dim", set(gate.proj_dim)}, {"init_t", set(gate.init_t)}};
  apply(object, setters, "a gate of the layer config");
  gate.type = parse_gate_type(type);
  return gate;
}

}  // namespace

MoeLayerConfig layer_config_from_json(const std::string& json) {
  constexpr const char* kWhat = "the layer config";
  const nlohmann::json object = parse_json_object(json, kWhat);
  MoeLayerConfig c;
  GateConfig single;  // gate_type/proj_dim/init_t: one gate; "gates": a list of them
  bool single_given = false, list_given = false;
  Setters setters = {
      {"model_dim", set(c.model_dim)},
      {"hidden_size", set(c.hidden_size)},
      {"num_experts", set(c.num_experts)},
      {"dtype", [&](const nlohmann::json& v) { c.dtype = parse_dtype(v.get<std::string>()); }},
      {"expert_type",
       [&](const nlohmann::json& v) {
         const std::string type = v.get<std::string>();
         SY_CHECK(type == "ffn" || type == "swiglu") << "expert_type \"" << type << "\"; expected ffn or swiglu";
         c.expert_type = type == "ffn" ? ExpertType::kFfn : ExpertType::kSwiglu;
       }},
      {"activation", [&](const nlohmann::json& v) { c.activation = kernels::parse_activation(v.get<std::string>()); }},
      {"has_fc1_bias", set(c.has_fc1_bias)},
      {"has_fc2_bias", set(c.has_fc2_bias)},
      {"fp32_gate", set(c.fp32_gate)},
      {"allow_tf32", set(c.allow_tf32)},
      {"pack_expert_weights", set(c.pack_expert_weights)},
      {"gate_type",
       [&](const nlohmann::json& v) {
         single.type = parse_gate_type(v.get<std::string>());
         single_given = true;
       }},
      {"proj_dim",
       [&](const nlohmann::json& v) {
         single.proj_dim = v.get<int64_t>();
         single_given = true;
       }},
      {"init_t",
       [&](const nlohmann::json& v) {
         single.init_t = v.get<double>();
         single_given = true;
       }},
      {"gates", [&](const nlohmann::json& v) {
         SY_CHECK(v.is_array() && !v.empty())
             << kWhat << " field \"gates\" is " << v.dump() << "; expected a non-empty list of gate objects";
         std::vector<GateConfig> gates;
         for (const auto& g : v) gates.push_back(gate_from_json(g));
         list_given = true;
         c.gates = std::move(gates);
       }}};
  apply(object, setters, kWhat);
  SY_CHECK(!(single_given && list_given)) << kWhat << " gives both \"gates\" and gate_type/proj_dim/init_t; use one";
  if (!list_given) c.gates = {single};
  c.validate();
  return c;
}

ForwardOptions forward_options_from_json(const std::string& json) {
  constexpr const char* kWhat = "the forward options";
  const nlohmann::json object = parse_json_object(json, kWhat);
  ForwardOptions o;
  Setters setters = {{"top_k", set(o.top_k)},
                     {"capacity_factor", set(o.capacity_factor)},
                     {"dropless_grouped", set(o.dropless_grouped)},
                     {"is_postscore", set(o.is_postscore)},
                     {"normalize_gate", set(o.normalize_gate)},
                     {"batch_prioritized_routing", set(o.batch_prioritized_routing)},
                     {"megablocks_size", set(o.megablocks_size)},
                     {"check_finite", set(o.check_finite)},
                     {"is_gshard_loss", set(o.is_gshard_loss)},
                     {"gate_noise", set(o.gate_noise)},
                     {"save_for_backward", set(o.save_for_backward)},
                     {"gate_index", set(o.gate_index)},
                     {"adaptive_r", set(o.adaptive_r)},
                     {"a2a_ffn_overlap_degree", set(o.overlap_degree)},
                     {"use_2dh", set(o.use_2dh)}};
  apply(object, setters, kWhat);
  return o;
}

}  // namespace switchyard
