// Expert parallelism of MoeLayer over a communicator (tutel-semantics 4.4, 5.2): tokens go to
// the rank holding their expert by all-to-all (adaptive_r = 1), or every rank gathers every
// expert's weights and keeps its tokens (adaptive_r = 0; the weight gradients come back by
// reduce-scatter). Parameter shards never move: r only changes transient exchanges.
#include <cstring>

#include "core/error.h"
#include "runtime/moe_layer.h"

namespace switchyard {
namespace {

comm::Element reduce_element(DType dtype) {
  SY_CHECK(dtype == DType::kFloat32 || dtype == DType::kFloat64)
      << "gradient reduction over MPI takes float32 or float64, not " << dtype_name(dtype);
  return dtype == DType::kFloat32 ? comm::Element::kFloat32 : comm::Element::kFloat64;
}

// Every rank's `mine`, rank-major; throws on every rank when an entry from `first_checked` on
// differs from rank 0's (the same data reaches every rank, so every rank decides alike).
std::vector<int64_t> gather_and_compare(comm::Communicator& group, const std::vector<int64_t>& mine,
                                        const std::vector<const char*>& names, size_t first_checked,
                                        const char* what) {
  const size_t n = mine.size(), w = static_cast<size_t>(group.size());
  std::vector<int64_t> all(n * w);
  group.all_gather_v(mine.data(), n, all.data(), std::vector<size_t>(w, n), comm::Element::kInt64);
  for (size_t q = 1; q < w; ++q)
    for (size_t i = first_checked; i < n; ++i) {
      if (all[q * n + i] == all[i]) continue;
      auto shown = [&](int64_t v) {
        if (std::string(names[i]) != "capacity_factor") return std::to_string(v);
        double d = 0;
        std::memcpy(&d, &v, 8);
        return std::to_string(d);
      };
      SY_THROW(UserError) << "the ranks of " << group.describe() << " disagree on " << what << ": rank " << q
                          << " has " << names[i] << " = " << shown(all[q * n + i]) << ", rank 0 has " << names[i]
                          << " = " << shown(all[i]);
    }
  return all;
}

}  // namespace

void MoeLayer::check_group_config() {
  const std::vector<int64_t> mine = {config_.model_dim,
                                     config_.hidden_size,
                                     config_.num_experts,
                                     static_cast<int64_t>(config_.dtype),
                                     static_cast<int64_t>(config_.expert_type),
                                     static_cast<int64_t>(config_.activation),
                                     config_.has_fc1_bias,
                                     config_.has_fc2_bias,
                                     config_.fp32_gate,
                                     config_.allow_tf32};
  gather_and_compare(*group_, mine,
                     {"model_dim", "hidden_size", "num_experts", "dtype", "expert_type", "activation", "has_fc1_bias",
                      "has_fc2_bias", "fp32_gate", "allow_tf32"},
                     0, "the layer config");
}

std::pair<int64_t, int64_t> MoeLayer::agree_on_call(int64_t tokens, int64_t max_count, const ForwardOptions& o) {
  int64_t cf_bits = 0;
  std::memcpy(&cf_bits, &o.capacity_factor, 8);
  const std::vector<int64_t> mine = {tokens,           max_count,         o.top_k,          cf_bits,
                                     o.adaptive_r,     o.overlap_degree,  o.is_postscore,   o.normalize_gate,
                                     o.dropless_grouped, o.megablocks_size, o.save_for_backward, o.use_2dh};
  const auto all = gather_and_compare(*group_, mine,
                                      {"tokens", "max_count", "top_k", "capacity_factor", "adaptive_r",
                                       "a2a_ffn_overlap_degree", "is_postscore", "normalize_gate", "dropless_grouped",
                                       "megablocks_size", "save_for_backward", "use_2dh"},
                                      2, "the forward options");
  int64_t most_tokens = 0, most_count = 0;
  for (size_t q = 0; q < all.size(); q += mine.size()) {
    most_tokens = std::max(most_tokens, all[q]);
    most_count = std::max(most_count, all[q + 1]);
  }
  return {most_tokens, most_count};
}

MoeLayer::ExpertTensors MoeLayer::expert_weights(int adaptive_r, std::vector<std::unique_ptr<Buffer>>& storage) {
  ExpertTensors local;
  for (const auto& [name, p] : params_)
    if (name.rfind("experts.", 0) == 0) local[name] = p.buffer->view(p.dtype, p.shape);
  if (auto it = packed_.find("fc1_t"); it != packed_.end())
    local["fc1_t"] = it->second.buffer->view(it->second.dtype, it->second.shape);
  if (adaptive_r != 0 || group_ == nullptr || group_->size() == 1) return local;
  // r = 0: every expert on every rank; shards are contiguous along the expert axis.
  const size_t w = static_cast<size_t>(group_->size());
  ExpertTensors full;
  for (const auto& [name, t] : local) {
    std::vector<int64_t> shape = t.shape();
    shape[0] *= static_cast<int64_t>(w);
    storage.push_back(std::make_unique<Buffer>(device_, t.nbytes() * w));
    group_->all_gather_v(t.data(), t.nbytes(), storage.back()->data(), std::vector<size_t>(w, t.nbytes()),
                         comm::Element::kByte);
    full[name] = storage.back()->view(t.dtype(), shape);
  }
  return full;
}

MoeLayer::ExpertTensors MoeLayer::expert_gradients(int adaptive_r, std::vector<std::unique_ptr<Buffer>>& storage) {
  ExpertTensors grads;
  const bool gathered = adaptive_r == 0 && group_ != nullptr && group_->size() > 1;
  for (const auto& [name, g] : grads_) {
    if (name.rfind("experts.", 0) != 0) continue;
    if (!gathered) {
      grads[name] = g.buffer->view(g.dtype, g.shape);
      continue;
    }
    std::vector<int64_t> shape = g.shape;
    shape[0] *= group_->size();
    storage.push_back(std::make_unique<Buffer>(device_, g.buffer->bytes() * static_cast<size_t>(group_->size())));
    grads[name] = storage.back()->view(g.dtype, shape);
  }
  return grads;
}

void MoeLayer::scatter_expert_gradients(const ExpertTensors& full) {
  for (const auto& [name, t] : full) {
    const Tensor mine = gradient(name);
    if (t.data() == mine.data()) continue;  // already this rank's shard
    // Every rank computed all experts' gradients from its own tokens: sum them per shard.
    group_->reduce_scatter(t.data(), mine.data(), static_cast<size_t>(mine.numel()), reduce_element(t.dtype()),
                           comm::ReduceOp::kSum);
  }
}

void MoeLayer::all_to_all(const void* send, void* recv, size_t bytes_per_rank, bool use_2dh) {
  if (!use_2dh) return group_->all_to_all(send, recv, bytes_per_rank, comm::Element::kByte);
  if (!two_d_)  // collective; every rank gets here in the same call (use_2dh is agreed on)
    two_d_ = std::make_unique<comm::HierarchicalAllToAll>(*group_, comm::local_size_from_environment(group_->size()));
  two_d_->run(send, recv, bytes_per_rank, comm::Element::kByte);
}

Tensor MoeLayer::to_experts(const Tensor& slots, const ForwardOptions& options, std::unique_ptr<Buffer>& storage) {
  if (options.adaptive_r == 0 || group_ == nullptr || group_->size() == 1) return slots;
  const int64_t w = group_->size(), local = local_experts_, c = slots.dim(1), m = slots.dim(2);
  const size_t row = static_cast<size_t>(c * m) * dtype_size(slots.dtype());  // one expert's C slots
  // Rank q receives the slots of its experts from every rank: [W, E_local, C, M], then
  // expert-major [E_local, W, C, M] (Tutel's [E_local, W * C, M]).
  std::vector<char> received(row * static_cast<size_t>(w * local));
  all_to_all(slots.data(), received.data(), row * static_cast<size_t>(local), options.use_2dh);
  storage = std::make_unique<Buffer>(device_, received.size());
  char* out = static_cast<char*>(storage->data());
  for (int64_t q = 0; q < w; ++q)
    for (int64_t e = 0; e < local; ++e)
      std::memcpy(out + static_cast<size_t>(e * w + q) * row, received.data() + static_cast<size_t>(q * local + e) * row,
                  row);
  return storage->view(slots.dtype(), {local, w * c, m});
}

void MoeLayer::from_experts(const Tensor& expert_major, const Tensor& slots, const ForwardOptions& options) {
  SY_CHECK(options.adaptive_r != 0 && group_ != nullptr && group_->size() > 1) << "from_experts without an exchange";
  const int64_t w = group_->size(), local = local_experts_, c = slots.dim(1), m = slots.dim(2);
  const size_t row = static_cast<size_t>(c * m) * dtype_size(slots.dtype());
  std::vector<char> outgoing(row * static_cast<size_t>(w * local));
  const char* in = static_cast<const char*>(expert_major.data());
  for (int64_t q = 0; q < w; ++q)
    for (int64_t e = 0; e < local; ++e)
      std::memcpy(outgoing.data() + static_cast<size_t>(q * local + e) * row, in + static_cast<size_t>(e * w + q) * row,
                  row);
  all_to_all(outgoing.data(), slots.data(), row * static_cast<size_t>(local), options.use_2dh);
}

}  // namespace switchyard
