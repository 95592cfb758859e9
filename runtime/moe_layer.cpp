// MoeLayer construction, parameters and safetensors I/O. The forward pass is in moe_forward.cpp.
#include "runtime/moe_layer.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "runtime/gemm_ops.h"
#include "runtime/init_ops.h"
#include "runtime/layer_plan.h"
#include "runtime/moe_saved.h"
#include "runtime/safetensors.h"
#include "runtime/staged_communicator.h"

namespace switchyard {
namespace {

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// layer_config_from_safetensors from a file already open (MoeLayer::open reads its header once).
MoeLayerConfig layer_config_from_header(const SafetensorsReader& reader, const std::string& path);

// The settings a file's tensors do not show, kept in its metadata by save() so that
// layer_config_from_safetensors (and so open()) restores them; a file without them (a Tutel
// checkpoint) keeps the defaults.
std::map<std::string, std::string> settings_metadata(const MoeLayerConfig& c) {
  return {{"format", "switchyard-moe"},
          {"activation", kernels::activation_name(c.activation)},
          {"allow_tf32", c.allow_tf32 ? "true" : "false"},
          {"pack_expert_weights", c.pack_expert_weights ? "true" : "false"}};
}

void apply_settings_metadata(const std::map<std::string, std::string>& metadata, const std::string& path,
                             MoeLayerConfig& c) {
  auto format = metadata.find("format");
  if (format == metadata.end() || format->second != "switchyard-moe") return;
  auto flag = [&](const char* key, bool& out) {
    auto it = metadata.find(key);
    if (it == metadata.end()) return;
    SY_CHECK(it->second == "true" || it->second == "false")
        << path << ": metadata " << key << " is '" << it->second << "'; expected true or false";
    out = it->second == "true";
  };
  flag("allow_tf32", c.allow_tf32);
  flag("pack_expert_weights", c.pack_expert_weights);
  if (auto it = metadata.find("activation"); it != metadata.end()) {
    try {
      c.activation = kernels::parse_activation(it->second);
    } catch (const UserError& e) {
      SY_THROW(UserError) << path << ": metadata activation: " << e.what();
    }
  }
}

}  // namespace

void MoeLayerConfig::validate() const {
  SY_CHECK(model_dim >= 1 && model_dim <= (1 << 20)) << "model_dim = " << model_dim << "; expected 1 to 1048576";
  SY_CHECK(hidden_size >= 1 && hidden_size <= (1 << 22))
      << "hidden_size = " << hidden_size << "; expected 1 to 4194304";
  SY_CHECK(num_experts >= 1 && num_experts <= 4096) << "num_experts = " << num_experts << "; expected 1 to 4096";
  SY_CHECK(dtype != DType::kInt32) << "a layer's dtype must be a floating type, not int32";
  SY_CHECK(!gates.empty() && gates.size() <= 64) << gates.size() << " gates; expected 1 to 64";
  for (size_t i = 0; i < gates.size(); ++i) {
    SY_CHECK(gates[i].proj_dim >= 1 && gates[i].proj_dim <= 65536)
        << "gate " << i << ": proj_dim = " << gates[i].proj_dim << "; expected 1 to 65536";
    SY_CHECK(gates[i].init_t > 0 && std::isfinite(gates[i].init_t))
        << "gate " << i << ": init_t = " << gates[i].init_t << "; expected a positive temperature";
    SY_CHECK((gates[i].type == GateType::kCustom) == (gates[i].custom != nullptr))
        << "gate " << i << " is " << gate_type_name(gates[i].type)
        << (gates[i].custom ? " but has a CustomGate" : " without its CustomGate") << "; a custom gate has both";
  }
}

GateType parse_gate_type(const std::string& text) {
  if (text == "top") return GateType::kTop;
  if (text == "cosine_top") return GateType::kCosineTop;
  SY_THROW(UserError) << "gate type '" << text << "'; expected top or cosine_top";
}

const char* gate_type_name(GateType type) {
  return type == GateType::kTop ? "top" : type == GateType::kCosineTop ? "cosine_top" : "custom";
}

int64_t expert_shards(int64_t experts, int64_t ranks) {
  SY_CHECK(experts >= 1 && ranks >= 1 && (experts % ranks == 0 || ranks % experts == 0))
      << "num_experts = " << experts << " does not fit a group of " << ranks << " ranks (" << experts
      << " experts cannot be split over " << ranks << " ranks: expected a multiple or a divisor of " << ranks << ")";
  return experts < ranks ? ranks / experts : 1;
}

MoeLayer::MoeLayer(Context& context, Device& device, MoeLayerConfig config, comm::Communicator* group)
    : MoeLayer(context, device, std::move(config), group, Undrawn{}) {
  init_parameters(1);
}

std::unique_ptr<MoeLayer> MoeLayer::open(Context& context, Device& device, const std::string& path,
                                         comm::Communicator* group) {
  SafetensorsReader reader(path);
  std::unique_ptr<MoeLayer> layer(
      new MoeLayer(context, device, layer_config_from_header(reader, path), group, Undrawn{}));
  layer->check_file(reader, path);
  // A failed read throws away the half-filled layer: nothing to keep intact, so no staging copy.
  for (auto& [name, p] : layer->params_) reader.read_into(device, reader.index().at(name), p.buffer->data());
  layer->refresh_packed();
  return layer;
}

MoeLayer::MoeLayer(Context& context, Device& device, MoeLayerConfig config, comm::Communicator* group, Undrawn)
    : context_(context), device_(device), config_(config), group_(group), user_group_(group) {
  config_.validate();
  local_experts_ = config_.num_experts;
  if (group_ != nullptr && group_->size() > 1) {
    check_group_config();  // first: a rank with another config must not pick a different path
    const int64_t w = group_->size(), e = config_.num_experts;
    shards_ = expert_shards(e, w);
    SY_CHECK(device_.is_cuda() || group_->memory() == comm::Memory::kHost)
        << "a CPU layer cannot exchange through " << group_->describe()
        << ": it takes GPU memory; pass a host-memory (MPI) communicator";
    if (device_.is_cuda() && group_->memory() == comm::Memory::kHost) {  // no NCCL: stage through the host
      staged_group_ = std::make_unique<StagedCommunicator>(*group_, device_);
      group_ = staged_group_.get();
    }
    local_experts_ = std::max<int64_t>(e / w, 1);
    // Fewer experts than ranks: rank e * s + q holds slice q of expert e's hidden units
    // (tutel-semantics 4.4) and of its fc2 bias, padded to s * ceil(M / s).
    SY_CHECK(shards_ == 1 || config_.hidden_size % shards_ == 0)
        << "hidden_size = " << config_.hidden_size << " cannot be cut into the " << shards_
        << " slices of an expert shared by " << shards_ << " ranks";
    SY_CHECK(shards_ == 1 || config_.expert_type == ExpertType::kFfn)
        << "SwiGLU experts sharded across ranks (num_experts " << e << " < " << w << " ranks) are not supported yet";
  }
  SY_CHECK(!device_.is_cuda() || config_.dtype != DType::kFloat64)
      << "a " << dtype_name(config_.dtype) << " layer cannot run on " << device_.name()
      << "; supported there: float32, float16, bfloat16";
  expert_copies_ = transposed_expert_copies();
  const int64_t e = local_experts_, m = config_.model_dim, h = config_.hidden_size / shards_;
  for (size_t i = 0; i < config_.gates.size(); ++i) {
    const GateConfig& gate = config_.gates[i];
    if (gate.type == GateType::kTop) {
      add_param(gate_param(i, "wg.weight"), {config_.num_experts, m}, gate_dtype());
    } else if (gate.type == GateType::kCosineTop) {
      add_param(gate_param(i, "cosine_projector.weight"), {gate.proj_dim, m}, gate_dtype());
      add_param(gate_param(i, "cosine_projector.bias"), {gate.proj_dim}, gate_dtype());
      add_param(gate_param(i, "sim_matrix"), {gate.proj_dim, config_.num_experts}, gate_dtype());
      add_param(gate_param(i, "temperature"), {1}, gate_dtype());
    }
  }
  if (config_.custom_experts) {  // the user's function holds its own parameters
    SY_CHECK(shards_ == 1) << "custom experts with experts sharded across ranks (num_experts " << config_.num_experts
                           << " < " << group_->size() << " ranks) are not supported";
    return;
  }
  if (config_.expert_type == ExpertType::kFfn) {
    add_param("experts.batched_fc1_w", {e, h, m}, config_.dtype);
    add_param("experts.batched_fc2_w", {e, h, m}, config_.dtype);
    if (config_.has_fc1_bias) add_param("experts.batched_fc1_bias", {e, h}, config_.dtype);
    if (config_.has_fc2_bias) add_param("experts.batched_fc2_bias", {e, (m + shards_ - 1) / shards_}, config_.dtype);
  } else {
    add_param("experts.W_fc1", {e, m, h}, config_.dtype);
    add_param("experts.W_fc2", {e, m, h}, config_.dtype);
    add_param("experts.W_fc3", {e, h, m}, config_.dtype);
  }
}

MoeLayerConfig layer_config_from_safetensors(const std::string& path) {
  return layer_config_from_header(SafetensorsReader(path), path);  // the header only
}

namespace {

MoeLayerConfig layer_config_from_header(const SafetensorsReader& reader, const std::string& path) {
  const TensorIndex& file = reader.index();  // shapes, dtypes and metadata
  auto find = [&](const char* name) -> const TensorSlice* {
    auto it = file.find(name);
    return it == file.end() ? nullptr : &it->second;
  };
  auto dtype_of = [&](const TensorSlice& t) {
    for (DType d : {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16})
      if (safetensors_dtype_name(d) == t.dtype) return d;
    SY_THROW(UserError) << path << ": weights of dtype " << t.dtype << "; a layer needs F32, F64, F16 or BF16";
  };
  MoeLayerConfig c;
  const TensorSlice* ffn = find("experts.batched_fc1_w");
  const TensorSlice* swiglu = find("experts.W_fc1");
  SY_CHECK((ffn != nullptr) != (swiglu != nullptr)) << path << " holds "
                                                    << (ffn ? "both experts.batched_fc1_w and experts.W_fc1"
                                                            : "neither experts.batched_fc1_w "
                                                              "(ffn) nor experts.W_fc1 (swiglu)");
  const TensorSlice& first = ffn ? *ffn : *swiglu;
  SY_CHECK(first.shape.size() == 3) << path << ": the first expert weight has shape " << shape_string(first.shape)
                                    << "; expected [E, H, M] (ffn) or [E, M, H] (swiglu)";
  c.expert_type = ffn ? ExpertType::kFfn : ExpertType::kSwiglu;
  c.num_experts = first.shape[0];
  c.hidden_size = ffn ? first.shape[1] : first.shape[2];
  c.model_dim = ffn ? first.shape[2] : first.shape[1];
  c.dtype = dtype_of(first);
  c.has_fc1_bias = ffn && find("experts.batched_fc1_bias") != nullptr;
  c.has_fc2_bias = ffn && find("experts.batched_fc2_bias") != nullptr;
  c.gates.clear();  // gates.0, gates.1, ... until one is missing
  const TensorSlice* first_gate = nullptr;
  for (size_t i = 0;; ++i) {
    const TensorSlice* wg = find(MoeLayer::gate_param(i, "wg.weight").c_str());
    const TensorSlice* sim = find(MoeLayer::gate_param(i, "sim_matrix").c_str());
    if (wg == nullptr && sim == nullptr) break;
    SY_CHECK(wg == nullptr || sim == nullptr) << path << " holds both " << MoeLayer::gate_param(i, "wg.weight")
                                              << " and " << MoeLayer::gate_param(i, "sim_matrix");
    GateConfig gate;
    if (sim != nullptr) {
      SY_CHECK(sim->shape.size() == 2 && sim->shape[1] == c.num_experts)
          << path << ": " << MoeLayer::gate_param(i, "sim_matrix") << " has shape " << shape_string(sim->shape)
          << "; expected [proj_dim, " << c.num_experts << "]";
      gate.type = GateType::kCosineTop;
      gate.proj_dim = sim->shape[0];
    }
    c.gates.push_back(gate);
    if (first_gate == nullptr) first_gate = wg ? wg : sim;
  }
  SY_CHECK(first_gate != nullptr) << path << " has no gate: expected gates.0.wg.weight (top) or gates.0.sim_matrix "
                                  << "and its companions (cosine_top)";
  c.fp32_gate = dtype_of(*first_gate) == DType::kFloat32 && c.dtype != DType::kFloat32;
  apply_settings_metadata(reader.metadata(), path, c);
  c.validate();
  return c;
}

}  // namespace

MoeLayer::~MoeLayer() = default;

std::string MoeLayer::gate_param(size_t index, const char* leaf) {
  return "gates." + std::to_string(index) + "." + leaf;
}

size_t MoeLayer::group_size() const {
  return group_ ? static_cast<size_t>(group_->size()) : 1;
}

void MoeLayer::add_param(const std::string& name, std::vector<int64_t> shape, DType dtype) {
  Param p;
  p.dtype = dtype;
  p.buffer = std::make_unique<Buffer>(device_, static_cast<size_t>(numel(shape)) * dtype_size(dtype));
  p.shape = std::move(shape);
  params_[name] = std::move(p);
}

std::vector<std::string> MoeLayer::parameter_names() const {
  std::vector<std::string> names;
  for (const auto& [name, p] : params_) names.push_back(name);
  return names;
}

Tensor MoeLayer::parameter(const std::string& name) const {
  auto it = params_.find(name);
  SY_CHECK(it != params_.end()) << "the layer has no parameter '" << name << "'";
  return it->second.buffer->view(it->second.dtype, it->second.shape);
}

int64_t MoeLayer::expert_parameter_count() const {
  int64_t n = 0;
  for (const auto& [name, p] : params_) n += name.rfind("experts.", 0) == 0 ? numel(p.shape) : 0;
  return n;
}

int64_t MoeLayer::gate_parameter_count() const {
  int64_t n = 0;
  for (const auto& [name, p] : params_) n += name.rfind("gates.", 0) == 0 ? numel(p.shape) : 0;
  return n;
}

// Each tensor is drawn on the layer's device by the counter-based generator: element i of the
// whole tensor (all E experts) is a function of (seed, name, i) alone, so every device agrees
// and each rank draws only its slice of the same global weights a single-rank layer has.
void MoeLayer::init_parameters(uint64_t seed) {
  const double m = static_cast<double>(config_.model_dim), h = static_cast<double>(config_.hidden_size);
  for (auto& [name, p] : params_) {
    // Fan-in of the nn.Linear each tensor belongs to: fc2 (and W_fc3) read the hidden units.
    const bool hidden_in =
        name == "experts.batched_fc2_w" || name == "experts.batched_fc2_bias" || name == "experts.W_fc3";
    const bool expert = name.rfind("experts.", 0) == 0;
    const bool padded_bias = shards_ > 1 && name == "experts.batched_fc2_bias";
    const bool gate = name.rfind("gates.", 0) == 0;
    const auto ends_with = [&](const std::string& leaf) {
      return name.size() > leaf.size() && name.compare(name.size() - leaf.size(), leaf.size(), leaf) == 0;
    };
    if (gate && ends_with(".temperature")) continue;  // a constant, set below
    RandomFill fill{.seed = seed, .name = name};
    // SwiGLU experts and the cosine gate's sim_matrix are N(0, 0.01^2) (Tutel's inits).
    fill.normal = (config_.expert_type == ExpertType::kSwiglu && expert) || (gate && ends_with(".sim_matrix"));
    fill.scale = fill.normal ? 0.01 : 1.0 / std::sqrt(hidden_in ? h : m);
    int64_t count = numel(p.shape);
    if (padded_bias) {  // slice q of expert e's bias, zero past M
      const int64_t slice = p.shape[1], expert_id = group_->rank() / shards_, q = group_->rank() % shards_;
      device_.fill_zero(p.buffer->data(), p.buffer->bytes());
      fill.first = expert_id * config_.model_dim + q * slice;
      count = std::clamp<int64_t>(config_.model_dim - q * slice, 0, slice);
    } else if (expert && group_size() > 1) {
      fill.first = static_cast<int64_t>(group_->rank()) * count;
    }
    fill_random(context_, p.buffer->view(p.dtype, {count}), fill);
  }
  for (size_t i = 0; i < config_.gates.size(); ++i) {  // a cosine gate's temperature: log(1 / init_t)
    if (config_.gates[i].type != GateType::kCosineTop) continue;
    const Param& p = params_.at(gate_param(i, "temperature"));
    const std::string bytes = encode_host_values({std::log(1.0 / config_.gates[i].init_t)}, p.dtype);
    device_.copy_from_host(p.buffer->data(), bytes.data(), bytes.size());
  }
  refresh_packed();
}

void MoeLayer::check_file(SafetensorsReader& reader, const std::string& path) const {
  const TensorIndex& file = reader.index();
  if (auto it = file.find("_num_global_experts"); it != file.end()) {
    int64_t stored = 0;
    if (it->second.dtype == "I64" && it->second.bytes == 8) reader.read(it->second, &stored);
    SY_CHECK(stored == config_.num_experts)
        << path << " holds a layer with " << stored << " experts; this layer has " << config_.num_experts;
  }
  for (const auto& [name, p] : params_) {
    auto it = file.find(name);
    SY_CHECK(it != file.end()) << path << " has no tensor '" << name << "'";
    SY_CHECK(it->second.dtype == safetensors_dtype_name(p.dtype))
        << path << ": tensor '" << name << "' is " << it->second.dtype << "; the layer expects "
        << safetensors_dtype_name(p.dtype) << " (" << dtype_name(p.dtype) << ")";
    SY_CHECK(it->second.shape == p.shape)
        << path << ": tensor '" << name << "' has shape " << shape_string(it->second.shape) << "; the layer expects "
        << shape_string(p.shape);
  }
}

void MoeLayer::load(const std::string& path) {
  SafetensorsReader reader(path);  // opens the file once: the index, then the data
  check_file(reader, path);        // everything checked before anything changes
  const TensorIndex& file = reader.index();
  // The data streams from the file into fresh device memory in chunks; the parameters take it
  // (device to device) only once every read succeeded, so a file cut short changes nothing.
  std::map<std::string, Buffer> fresh;
  for (const auto& [name, p] : params_) {
    Buffer& b = fresh.emplace(name, Buffer(device_, p.buffer->bytes())).first->second;
    reader.read_into(device_, file.at(name), b.data());
  }
  for (auto& [name, p] : params_) device_.copy_within(p.buffer->data(), fresh.at(name).data(), p.buffer->bytes());
  refresh_packed();
}

void MoeLayer::save(const std::string& path) const {
  // Streamed from the parameters a chunk at a time: a copy of a Mixtral-size layer (5.6 GB in
  // float32) would double the memory a save needs.
  TensorSources file;
  for (const auto& [name, p] : params_)
    file[name] = {safetensors_dtype_name(p.dtype), p.shape, p.buffer->bytes(),
                  [this, data = static_cast<const char*>(p.buffer->data())](uint64_t offset, size_t count, char* out) {
                    device_.copy_to_host(out, data + offset, count);
                  }};
  const int64_t experts = config_.num_experts;
  file["_num_global_experts"] = {
      "I64", {}, sizeof experts, [&experts](uint64_t, size_t count, char* out) { std::memcpy(out, &experts, count); }};
  write_safetensors_streamed(path, file, settings_metadata(config_));
}

void MoeLayer::pack_expert_panels() {
  if (!config_.pack_expert_weights || config_.custom_experts || shards_ > 1) return;
  const char* type = config_.expert_type == ExpertType::kFfn ? "ffn" : "swiglu";
  for (const ForwardExpertWeight& w : forward_expert_weights(type, config_.model_dim, config_.hidden_size,
                                                             config_.dtype, config_.allow_tf32, device_.target())) {
    const Param& weight = params_.at(w.name);
    const int64_t words = gemm_panels_words(w.shape, weight.shape[0], device_.target());
    if (words == 0) continue;  // a GEMM that packs its own (float16, AMX, ...)
    Param& panels = packed_[std::string(w.name) + kPanelsSuffix];
    if (!panels.buffer) {
      panels.dtype = DType::kInt32;
      panels.shape = {words};
      panels.buffer = std::make_unique<Buffer>(device_, static_cast<size_t>(words) * sizeof(int32_t));
    }
    pack_gemm_b(context_, weight.buffer->view(weight.dtype, weight.shape), w.shape,
                panels.buffer->view(panels.dtype, panels.shape));
  }
}

void MoeLayer::refresh_packed() {
  // A CUDA layer keeps transposed copies of the expert weights its GEMMs read only in the other
  // layout: for TF32 on Hopper, whose wgmma reads B only as [N, K], fc2's and SwiGLU's forward
  // weights and fc1 for the input gradient (expert_copies_). Every other GEMM reads the weights as
  // stored; the CPU's pack B^T panels themselves, or read the experts' panels packed here
  // (pack_expert_weights).
  if (!device_.is_cuda()) return pack_expert_panels();
  for (const auto& [weight, copy] : expert_copies_) {
    const Param& src = params_.at(weight);
    const int64_t batch = src.shape[0], rows = src.shape[1], cols = src.shape[2];
    Param& packed = packed_[copy];
    if (!packed.buffer) {
      packed.dtype = src.dtype;
      packed.shape = {batch, cols, rows};
      packed.buffer = std::make_unique<Buffer>(device_, src.buffer->bytes());
    }
    transpose(context_, src.buffer->view(src.dtype, {batch, rows, cols}),
              packed.buffer->view(packed.dtype, packed.shape));
  }
}

std::vector<std::pair<std::string, std::string>> MoeLayer::transposed_expert_copies() const {
  if (!device_.is_cuda() || config_.custom_experts) return {};
  return switchyard::transposed_expert_copies(config_.expert_type == ExpertType::kFfn ? "ffn" : "swiglu",
                                              config_.model_dim, config_.hidden_size, config_.dtype, config_.allow_tf32,
                                              device_.target());
}

}  // namespace switchyard
