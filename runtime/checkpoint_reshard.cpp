#include "runtime/checkpoint_reshard.h"

#include <cstring>
#include <vector>

#include "core/error.h"
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
  for (int r = 0; r < from_ranks; ++r) {
    paths.push_back(checkpoint_path(in_pattern, r, from_ranks));
    inputs.push_back(read_safetensors(paths.back()));
    if (r > 0) check_alike(inputs[0], inputs[r], paths[0], paths[r]);
  }
  const int64_t experts = global_experts(inputs[0], paths[0]);
  for (const auto& [name, t] : inputs[0]) {
    if (!is_expert(name)) continue;
    SY_CHECK(!t.shape.empty() && t.shape[0] * from_ranks == experts)
        << paths[0] << ": tensor '" << name << "' holds " << (t.shape.empty() ? 0 : t.shape[0]) << " experts; "
        << from_ranks << " ranks of it make " << (t.shape.empty() ? 0 : t.shape[0] * from_ranks) << ", not the "
        << experts << " of _num_global_experts";
  }
  SY_CHECK(experts % to_ranks == 0) << experts << " experts cannot be split over " << to_ranks
                                    << " ranks (experts sharded across ranks are not supported yet)";
  // Gather: whole expert tensors, in rank order along the expert axis.
  TensorFile whole = inputs[0];
  for (auto& [name, t] : whole) {
    if (!is_expert(name)) continue;
    t.shape[0] = experts;
    for (int r = 1; r < from_ranks; ++r) t.bytes += inputs[r].at(name).bytes;
  }
  // Scatter: each output rank's slice; shared tensors as rank 0 had them.
  for (int r = 0; r < to_ranks; ++r) {
    TensorFile out = whole;
    for (auto& [name, t] : out) {
      if (!is_expert(name)) continue;
      const size_t slice = t.bytes.size() / static_cast<size_t>(to_ranks);
      t.bytes = t.bytes.substr(static_cast<size_t>(r) * slice, slice);
      t.shape[0] = experts / to_ranks;
    }
    write_safetensors(checkpoint_path(out_pattern, r, to_ranks), out, {{"format", "switchyard-moe"}});
  }
}

}  // namespace switchyard
