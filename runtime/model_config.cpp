#include "runtime/model_config.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "jit/kernel_family.h"
#include "jit/kernels/cast.h"
#include "jit/kernels/cosine.h"
#include "jit/kernels/dispatch.h"
#include "jit/kernels/elementwise.h"
#include "jit/kernels/example_loss.h"
#include "jit/kernels/gating.h"
#include "jit/kernels/gemm.h"
#include "jit/kernels/init_random.h"

namespace switchyard {
namespace {

using nlohmann::json;

const std::set<std::string> kKnownFields = {
    "name",         "model_dim",       "hidden_size", "num_experts",    "top_k",       "dtype",
    "is_postscore", "capacity_factor", "description", "normalize_gate", "expert_type", "activation",
    "has_fc1_bias", "has_fc2_bias",    "fp32_gate",   "allow_tf32",     "training",    "gate_type",
    "proj_dim",     "init_t",          "gates"};

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
  for (const char* flag : {"has_fc1_bias", "has_fc2_bias", "fp32_gate", "allow_tf32", "training"}) {
    if (!doc.contains(flag)) continue;
    SY_CHECK(doc[flag].is_boolean()) << origin << ": " << flag << " " << doc[flag].dump() << " is not true or false";
  }
  c.has_fc1_bias = doc.value("has_fc1_bias", true);
  c.has_fc2_bias = doc.value("has_fc2_bias", true);
  c.fp32_gate = doc.value("fp32_gate", false);
  c.allow_tf32 = doc.value("allow_tf32", false);
  c.training = doc.value("training", false);
  read_gates(doc, c, origin);
}

// The layer's GEMMs: the gate, then fc1/fc2 (ffn) or W1/W2/W3 (swiglu).
std::vector<kernels::GemmShape> layer_gemms(const ModelConfig& c, DType dtype, const Target& target) {
  using kernels::GemmShape;
  const DType gate = c.fp32_gate ? DType::kFloat32 : dtype;
  // The gate and fc1 weights are stored as nn.Linear [out, in]: the CPU GEMM reads them as they
  // are (trans_b: it packs B^T panels itself); CUDA reads the layer's transposed copies, as the
  // tensor-core kernels take B as [K, N].
  const bool linear = target.is_cpu();
  std::vector<GemmShape> shapes;
  for (const auto& g : c.gates) {
    if (g.type == "cosine_top") {  // the projector (nn.Linear with bias), then normalized rows x columns
      shapes.push_back({.dtype = gate, .n = g.proj_dim, .k = c.model_dim, .trans_b = true, .bias = true});
      shapes.push_back({.dtype = gate, .n = c.num_experts, .k = g.proj_dim});
    } else if (g.type == "top") {  // a custom gate is the user's code: no kernel of ours
      shapes.push_back({gate, c.num_experts, c.model_dim, linear, false, kernels::kActNone});
    }
  }
  if (c.expert_type == "ffn") {
    shapes.push_back({dtype, c.hidden_size, c.model_dim, linear, c.has_fc1_bias,
                      kernels::parse_activation(c.activation), c.allow_tf32});
    shapes.push_back({dtype, c.model_dim, c.hidden_size, false, c.has_fc2_bias, kernels::kActNone, c.allow_tf32});
  } else if (c.expert_type == "swiglu") {  // custom experts: none of ours
    shapes.push_back({dtype, c.hidden_size, c.model_dim, false, false, kernels::kActNone, c.allow_tf32});
    shapes.push_back({dtype, c.hidden_size, c.model_dim, false, false, kernels::kActSwiglu, c.allow_tf32});
    shapes.push_back({dtype, c.model_dim, c.hidden_size, false, false, kernels::kActNone, c.allow_tf32});
  }
  return shapes;
}

// The GEMMs training adds (MoeLayer::backward and the saving forward): data gradients A W^T,
// weight gradients A^T B (trans_a), and the unfused fc1 that keeps its pre-activation.
std::vector<kernels::GemmShape> training_gemms(const ModelConfig& c, DType dtype, const Target& target) {
  using kernels::GemmShape;
  const DType gate = c.fp32_gate ? DType::kFloat32 : dtype;
  const int64_t m = c.model_dim, h = c.hidden_size;
  std::vector<GemmShape> shapes;
  for (const auto& g : c.gates) {
    const int64_t p = g.proj_dim, e = c.num_experts;
    if (g.type == "cosine_top") {
      shapes.push_back({.dtype = gate, .n = p, .k = e, .trans_b = true});  // d(normalized projections)
      shapes.push_back({.dtype = gate, .n = e, .k = p, .trans_a = true});  // d(normalized columns)
      shapes.push_back({.dtype = gate, .n = m, .k = p, .trans_a = true});  // d(projector weight)
      shapes.push_back({.dtype = gate, .n = m, .k = p});                   // d(gate input)
    } else if (g.type == "top") {
      shapes.push_back({.dtype = gate, .n = m, .k = e});                   // d(gate input)
      shapes.push_back({.dtype = gate, .n = m, .k = e, .trans_a = true});  // d(gate weight)
    }
  }
  const auto act = kernels::parse_activation(c.activation);
  if (c.expert_type == "ffn") {  // fc1 keeping its pre-activation reads fc1 as the forward does
    shapes.push_back({.dtype = dtype,
                      .n = h,
                      .k = m,
                      .trans_b = target.is_cpu(),
                      .bias = c.has_fc1_bias,
                      .allow_tf32 = c.allow_tf32});
    shapes.push_back({.dtype = dtype,
                      .n = h,
                      .k = m,
                      .trans_b = true,
                      .activation = kernels::activation_derivative(act),
                      .allow_tf32 = c.allow_tf32});
    shapes.push_back({.dtype = dtype, .n = m, .k = h, .allow_tf32 = c.allow_tf32});
    shapes.push_back({.dtype = dtype, .n = m, .k = h, .trans_a = true});
  } else if (c.expert_type == "swiglu") {
    shapes.push_back({.dtype = dtype, .n = h, .k = m, .trans_b = true, .allow_tf32 = c.allow_tf32});
    shapes.push_back({.dtype = dtype, .n = m, .k = h, .trans_b = true, .allow_tf32 = c.allow_tf32});
    shapes.push_back({.dtype = dtype, .n = m, .k = h, .trans_a = true});
    shapes.push_back({.dtype = dtype, .n = h, .k = m, .trans_a = true});
  }
  // Dropless grouped layers reduce weight gradients over each expert's count, which not every
  // kernel can (gemm_spec sends those elsewhere): both forms, the same spec where they agree.
  const size_t plain = shapes.size();
  for (size_t i = 0; i < plain; ++i) {
    if (!shapes[i].trans_a) continue;
    shapes.push_back(shapes[i]);
    shapes.back().grouped = true;
  }
  return shapes;
}

bool family_supports(const std::string& family, DType dtype, const Target& target) {
  const KernelFamily& f = find_kernel_family(family);
  const auto& dtypes = target.is_cpu() ? f.cpu_dtypes : f.cuda_dtypes;
  return std::find(dtypes.begin(), dtypes.end(), dtype) != dtypes.end();
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
                                         "proj_dim, init_t, gates, description";
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

namespace {

// Gating and expert kernels, where the target has templates for them.
void add_layer_kernels(const ModelConfig& config, DType dtype, const Target& target, KernelSet& set,
                       std::set<std::string>& seen) {
  auto add = [&](KernelSpec spec) {
    if (seen.insert(spec.to_string()).second) set.specs.push_back(std::move(spec));
  };
  // Every layer dtype a target's dispatch supports has gating and GEMM templates there too.
  if (!family_supports("gate_topk", dtype, target)) return;
  // helloworld's ExampleModel loss on the output (runtime/example_loss.h): a warm covers the main job.
  add(kernels::example_loss_spec(dtype, kernels::kLossLogits, target));
  add(kernels::example_loss_spec(dtype, kernels::kLossSoftmax, target));
  if (config.training) add(kernels::example_loss_spec(dtype, kernels::kLossGrad, target));
  for (const auto& shape : layer_gemms(config, dtype, target)) add(kernels::gemm_spec(shape, target));
  const DType gate = config.fp32_gate ? DType::kFloat32 : dtype;
  add(kernels::init_random_spec(dtype, target));  // every layer draws its weights where they live
  add(kernels::init_random_spec(gate, target));
  if (gate != dtype) {
    add(kernels::cast_spec(dtype, gate, target));                                // the gate's copy of the input
    if (dtype == DType::kFloat64) add(kernels::cast_spec(gate, dtype, target));  // gates back for dispatch
  }
  // CUDA layers' transposed weight copies (the gate's and fc1's); experts shared by several ranks
  // (E < W) add their copies' partial sums and scale their fc2 bias.
  using kernels::elementwise_spec;
  if (target.is_cuda()) add(elementwise_spec(gate, kernels::kEwTranspose, kernels::kActNone, target));
  const bool cosine = std::any_of(config.gates.begin(), config.gates.end(),
                                  [](const ModelConfig::Gate& g) { return g.type == "cosine_top"; });
  if (cosine) {  // normalization and the temperature (moe_cosine_gate.cpp)
    add(kernels::cosine_spec(gate, kernels::kCosNormalize, target));
    add(kernels::cosine_spec(gate, kernels::kCosScale, target));
  }
  if (config.expert_type == "ffn") {
    if (target.is_cuda()) add(elementwise_spec(dtype, kernels::kEwTranspose, kernels::kActNone, target));
    add(elementwise_spec(dtype, kernels::kEwSumRows, kernels::kActNone, target));
    add(elementwise_spec(dtype, kernels::kEwScale, kernels::kActNone, target));
  }
  for (int64_t k : config.top_k) {
    for (bool normalize : config.normalize_gate)
      add(kernels::gate_topk_spec(gate, config.num_experts, k, normalize, target));
    add(kernels::route_locations_spec(kernels::score_dtype_for(gate), config.num_experts, k, target));
  }
  add(kernels::route_priority_spec(kernels::score_dtype_for(gate), target));  // batch_prioritized_routing
  if (!config.training) return;
  for (const auto& shape : training_gemms(config, dtype, target)) add(kernels::gemm_spec(shape, target));
  for (int64_t k : config.top_k) {
    for (bool normalize : config.normalize_gate)
      add(kernels::gate_backward_spec(gate, config.num_experts, k, normalize, target));
    add(kernels::gate_grad_spec(dtype, config.model_dim, k, target));
    for (bool postscore : config.is_postscore) {  // the transposes: encode <-> decode, gate flipped
      add(kernels::dispatch_spec(true, dtype, config.model_dim, k, !postscore, target));
      add(kernels::dispatch_spec(false, dtype, config.model_dim, k, !postscore, target));
    }
  }
  const auto act = kernels::parse_activation(config.activation);
  if (config.expert_type == "ffn" && act != kernels::kActNone)
    add(elementwise_spec(dtype, kernels::kEwActivate, act, target));
  if (config.expert_type == "swiglu") {
    add(elementwise_spec(dtype, kernels::kEwSwiglu, kernels::kActNone, target));
    add(elementwise_spec(dtype, kernels::kEwSwigluBackward, kernels::kActNone, target));
  }
  add(elementwise_spec(dtype, kernels::kEwAdd, kernels::kActNone, target));
  add(elementwise_spec(dtype, kernels::kEwSgd, kernels::kActNone, target));
  if (cosine) {  // and the projector bias's gradient
    add(kernels::cosine_spec(gate, kernels::kCosNormalizeBackward, target));
    add(kernels::cosine_spec(gate, kernels::kCosScaleBackward, target));
    add(elementwise_spec(gate, kernels::kEwSumRows, kernels::kActNone, target));
  }
  if (gate != dtype) {
    add(elementwise_spec(gate, kernels::kEwSgd, kernels::kActNone, target));
    add(kernels::cast_spec(gate, dtype, target));  // the fp32 gate's input gradient
  }
}

}  // namespace

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
    add_layer_kernels(config, dtype, target, set, seen);
  }
  SY_CHECK(!set.specs.empty()) << "model '" << config.name << "' has no kernel for target " << target.to_string()
                               << ": " << (set.skipped.empty() ? "no dtype" : set.skipped.front());
  return set;
}

}  // namespace switchyard
