#include "runtime/checkpoint_reshard.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "runtime/moe_layer.h"
#include "runtime/safetensors.h"
#include "runtime/tensor.h"

namespace switchyard {
namespace {

bool is_expert(const std::string& name) {
  return name.rfind("experts.", 0) == 0;
}

int64_t global_experts(const TensorFile& file, const std::string& path) {
  auto it = file.find("_num_global_experts");
  SY_CHECK(it != file.end() && it->second.dtype == "I64" && it->second.bytes.size() == 8)
      << path << " has no _num_global_experts (I64): not a per-rank MoE checkpoint";
  int64_t experts = 0;
  std::memcpy(&experts, it->second.bytes.data(), 8);
  SY_CHECK(experts >= 1) << path << ": _num_global_experts = " << experts << "; expected a positive count";
  return experts;
}

// Every rank's file agrees with rank 0's on names, dtypes and shapes (experts: all but dim 0).
void check_alike(const TensorFile& first, const TensorFile& other, const std::string& first_path,
                 const std::string& other_path) {
  SY_CHECK(first.size() == other.size()) << other_path << " holds " << other.size() << " tensors, " << first_path
                                         << " holds " << first.size();
  for (const auto& [name, t] : first) {
    auto it = other.find(name);
    SY_CHECK(it != other.end()) << other_path << " has no tensor '" << name << "' (" << first_path << " has it)";
    const StoredTensor& o = it->second;
    bool same = o.dtype == t.dtype && o.shape.size() == t.shape.size();
    for (size_t d = is_expert(name) ? 1 : 0; same && d < t.shape.size(); ++d) same = o.shape[d] == t.shape[d];
    SY_CHECK(same) << other_path << ": tensor '" << name << "' is " << o.dtype << shape_string(o.shape) << ", "
                   << first_path << " has " << t.dtype << shape_string(t.shape);
  }
}

// The whole expert tensors ([E, H, M], [E, H], fc2 bias [E, M]) from per-rank files: slices
// concatenate in rank order (whole experts, or hidden slices of an expert shared by s ranks);
// shared fc2 bias slices are padded to s * ceil(M / s).
TensorFile gather_experts(const std::vector<TensorFile>& inputs, const std::vector<std::string>& paths, int64_t experts,
                          int64_t s) {
  const int64_t ranks = static_cast<int64_t>(inputs.size());
  TensorFile whole = inputs[0];
  for (auto& [name, t] : whole) {
    if (!is_expert(name)) continue;
    const bool shared = s > 1;
    SY_CHECK(t.shape.size() >= 2 && (shared ? t.shape[0] == 1 : t.shape[0] * ranks == experts))
        << paths[0] << ": tensor '" << name << "' has shape " << shape_string(t.shape) << "; " << ranks
        << " ranks of it do not make the " << experts << " experts of _num_global_experts";
    for (int64_t r = 1; r < ranks; ++r) t.bytes += inputs[r].at(name).bytes;
    t.shape[0] = experts;
    if (!shared) continue;
    if (name != "experts.batched_fc2_bias") {
      t.shape[1] *= s;  // hidden slices, in order
      continue;
    }
    // M from fc1's [E, H, M] (whatever the gate type: a cosine gate has no wg.weight)
    const int64_t m = inputs[0].at("experts.batched_fc1_w").shape.at(2), padded = t.shape[1];
    const size_t el = safetensors_element_size(t.dtype);
    std::string bias(static_cast<size_t>(experts * m) * el, '\0');
    for (int64_t g = 0; g < experts; ++g)
      bias.replace(static_cast<size_t>(g * m) * el, static_cast<size_t>(m) * el,
                   t.bytes.substr(static_cast<size_t>(g * s * padded) * el, static_cast<size_t>(m) * el));
    t.bytes = std::move(bias);
    t.shape[1] = m;
  }
  return whole;
}

// Rank r's file of `ranks` from the whole tensors (the inverse of gather_experts).
TensorFile scatter_experts(const TensorFile& whole, int64_t experts, int64_t s, int r, int ranks) {
  TensorFile out = whole;
  for (auto& [name, t] : out) {
    if (!is_expert(name)) continue;
    if (s > 1 && name == "experts.batched_fc2_bias") {
      const int64_t m = t.shape[1], padded = (m + s - 1) / s, g = r / s, q = r % s;
      const size_t el = safetensors_element_size(t.dtype);
      std::string slice(static_cast<size_t>(padded) * el, '\0');
      const int64_t kept = std::max<int64_t>(0, std::min(padded, m - q * padded));
      slice.replace(
          0, static_cast<size_t>(kept) * el,
          whole.at(name).bytes.substr(static_cast<size_t>(g * m + q * padded) * el, static_cast<size_t>(kept) * el));
      t.bytes = std::move(slice);
      t.shape = {1, padded};
      continue;
    }
    SY_CHECK(s == 1 || t.shape[1] % s == 0)
        << "tensor '" << name << "' has " << t.shape[1] << " hidden units, which " << s << " ranks cannot share evenly";
    const size_t slice = t.bytes.size() / static_cast<size_t>(ranks);  // whole experts, or an expert's hidden slice
    t.bytes = t.bytes.substr(static_cast<size_t>(r) * slice, slice);
    if (s == 1) {
      t.shape[0] = experts / ranks;
    } else {
      t.shape[0] = 1;
      t.shape[1] /= s;
    }
  }
  return out;
}

}  // namespace

std::string checkpoint_path(std::string pattern, int rank, int size) {
  for (const auto& [key, value] : {std::pair{std::string("{rank}"), rank}, {std::string("{size}"), size}})
    for (size_t at; (at = pattern.find(key)) != std::string::npos;)
      pattern.replace(at, key.size(), std::to_string(value));
  return pattern;
}

void reshard_checkpoint(const std::string& in_pattern, const std::string& out_pattern, int from_ranks, int to_ranks) {
  SY_CHECK(from_ranks >= 1 && to_ranks >= 1)
      << "--from-ranks " << from_ranks << " and --to-ranks " << to_ranks << ": expected positive rank counts";
  SY_CHECK(from_ranks == 1 || in_pattern.find("{rank}") != std::string::npos)
      << "input pattern '" << in_pattern << "' has no {rank} for " << from_ranks << " ranks";
  SY_CHECK(to_ranks == 1 || out_pattern.find("{rank}") != std::string::npos)
      << "output pattern '" << out_pattern << "' has no {rank} for " << to_ranks << " ranks";
  std::vector<TensorFile> inputs;
  std::vector<std::string> paths;
  std::map<std::string, std::string> metadata;  // the layer's settings, from the first input
  for (int r = 0; r < from_ranks; ++r) {
    paths.push_back(checkpoint_path(in_pattern, r, from_ranks));
    SafetensorsReader reader(paths.back());
    if (r == 0) metadata = reader.metadata();
    inputs.push_back(reader.read_all());
    if (r > 0) check_alike(inputs[0], inputs[r], paths[0], paths[r]);
  }
  const int64_t experts = global_experts(inputs[0], paths[0]);
  const int64_t s_in = expert_shards(experts, from_ranks), s_out = expert_shards(experts, to_ranks);
  const TensorFile whole = gather_experts(inputs, paths, experts, s_in);
  std::vector<TensorFile> outputs;  // every check passes before the first file is written
  for (int r = 0; r < to_ranks; ++r) outputs.push_back(scatter_experts(whole, experts, s_out, r, to_ranks));
  metadata["format"] = "switchyard-moe";
  for (int r = 0; r < to_ranks; ++r) write_safetensors(checkpoint_path(out_pattern, r, to_ranks), outputs[r], metadata);
}

}  // namespace switchyard
