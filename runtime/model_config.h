// A model config (JSON, docs/model-config.md): the MoE layer's fixed shapes and the option
// ranges it may switch between. From it the finite set of kernels a run can request is
// enumerated, which is what `switchyard warm` and `switchyard dump` compile.
#pragma once

#include <string>
#include <vector>

#include "jit/kernel_spec.h"

namespace switchyard {

struct ModelConfig {
  std::string name;
  int64_t model_dim = 0;
  int64_t hidden_size = 0;
  int64_t num_experts = 0;
  std::vector<int64_t> top_k{1};
  std::vector<DType> dtypes{DType::kFloat32};
  std::vector<bool> is_postscore{true};
  std::vector<double> capacity_factor{1.0};
  std::vector<bool> normalize_gate{true};
  std::string expert_type = "ffn";  // ffn or swiglu
  std::string activation = "relu";  // ffn: relu, gelu or silu
  bool has_fc1_bias = true;
  bool has_fc2_bias = true;
  bool fp32_gate = false;
  bool allow_tf32 = false;
  bool training = false;             // also the backward and SGD kernels (MoeLayer::backward, sgd_step)
  bool pack_expert_weights = false;  // also the packing of the experts' weights (MoeLayerConfig)
  struct Gate {
    std::string type = "top";  // top or cosine_top
    int64_t proj_dim = 256;    // cosine_top's projector width
  };
  std::vector<Gate> gates{Gate{}};  // every gate a call may pick (gate_index)

  /// Parses and validates; throws UserError naming the field, its value and what was expected
  /// (unknown fields are errors too, so a typo is never silently ignored).
  static ModelConfig from_json_text(const std::string& text, const std::string& origin);
  static ModelConfig load(const std::string& path);
};

struct KernelSet {
  std::vector<KernelSpec> specs;     // deduplicated, in a stable order
  std::vector<std::string> skipped;  // e.g. "bfloat16 on cpu: not supported by the CPU templates"
};

/// Every kernel a layer with `config` can request on `target`. Throws UserError when the
/// target supports none of the config's dtypes.
KernelSet kernel_set(const ModelConfig& config, const Target& target);

}  // namespace switchyard
