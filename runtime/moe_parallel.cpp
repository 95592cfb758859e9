// Expert parallelism of MoeLayer over a communicator (tutel-semantics 4.4, 5.2): tokens go to
// the rank holding their expert by all-to-all (adaptive_r = 1), or every rank gathers every
// expert's weights and keeps its tokens (adaptive_r = 0; the weight gradients come back by
// reduce-scatter). Parameter shards never move: r only changes transient exchanges.
#include <cstring>

#include "core/error.h"
#include "runtime/elementwise_ops.h"
#include "runtime/moe_layer.h"
#include "runtime/moe_saved.h"

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
                                        const std::vector<const char*>& names, size_t first_checked, const char* what) {
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
      SY_THROW(UserError) << "the ranks of " << group.describe() << " disagree on " << what << ": rank " << q << " has "
                          << names[i] << " = " << shown(all[q * n + i]) << ", rank 0 has " << names[i] << " = "
                          << shown(all[i]);
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
  const std::vector<int64_t> mine = {tokens,
                                     max_count,
                                     o.top_k,
                                     cf_bits,
                                     o.adaptive_r,
                                     o.overlap_degree,
                                     o.is_postscore,
                                     o.normalize_gate,
                                     o.dropless_grouped,
                                     o.megablocks_size,
                                     o.save_for_backward,
                                     o.use_2dh};
  const auto all = gather_and_compare(
      *group_, mine,
      {"tokens", "max_count", "top_k", "capacity_factor", "adaptive_r", "a2a_ffn_overlap_degree", "is_postscore",
       "normalize_gate", "dropless_grouped", "megablocks_size", "save_for_backward", "use_2dh"},
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

namespace {

// Chunk i of the capacity axis of slots [E, C, M] (rows [i * cd, (i + 1) * cd) of every expert)
// to or from a packed [E, cd, M].
void copy_chunk(char* packed, char* slots, int64_t experts, int64_t c, int64_t cd, int64_t i, size_t row,
                bool to_packed) {
  for (int64_t g = 0; g < experts; ++g) {
    char* at_slots = slots + static_cast<size_t>(g * c + i * cd) * row;
    char* at_packed = packed + static_cast<size_t>(g * cd) * row;
    if (to_packed)
      std::memcpy(at_packed, at_slots, static_cast<size_t>(cd) * row);
    else
      std::memcpy(at_slots, at_packed, static_cast<size_t>(cd) * row);
  }
}

// [a][b] blocks of `block` bytes -> [b][a].
void swap_blocks(const char* in, char* out, int64_t a, int64_t b, size_t block) {
  for (int64_t i = 0; i < a; ++i)
    for (int64_t j = 0; j < b; ++j)
      std::memcpy(out + static_cast<size_t>(j * a + i) * block, in + static_cast<size_t>(i * b + j) * block, block);
}

class Done : public comm::PendingOp {
 public:
  void wait() override {}
};

// Send, receive and permute staging of one chunk: [W][E_local][cd][M] each.
struct ChunkStaging {
  std::vector<char> send, recv, back_send, back_recv;
  explicit ChunkStaging(size_t bytes) : send(bytes), recv(bytes), back_send(bytes), back_recv(bytes) {}
};

}  // namespace

std::unique_ptr<comm::PendingOp> MoeLayer::start_exchange(const void* send, void* recv, size_t bytes_per_rank,
                                                          bool use_2dh) {
  if (!use_2dh) return group_->start_all_to_all(send, recv, bytes_per_rank, comm::Element::kByte);
  if (!two_d_)  // collective; every rank gets here in the same call (use_2dh is agreed on)
    two_d_ = std::make_unique<comm::HierarchicalAllToAll>(*group_, comm::local_size_from_environment(group_->size()));
  two_d_->run(send, recv, bytes_per_rank, comm::Element::kByte);  // NOTE: the 2DH exchange does not overlap yet
  return std::make_unique<Done>();
}

size_t MoeLayer::pre_bytes(int64_t experts, int64_t rows) const {
  const int64_t copies = config_.expert_type == ExpertType::kSwiglu ? 2 : 1;
  return static_cast<size_t>(copies * experts * rows * config_.hidden_size) * dtype_size(config_.dtype);
}

void MoeLayer::experts_forward(const Tensor& slots, const Tensor& processed, const Tensor* rows,
                               const ExpertTensors& weights, const ForwardOptions& o, ExpertsSaved* saved) {
  const DType dt = config_.dtype;
  const bool swiglu = config_.expert_type == ExpertType::kSwiglu;
  const int64_t h = config_.hidden_size;
  auto pre_view = [&](int64_t chunk, int64_t experts, int64_t n) {
    char* base = static_cast<char*>(saved->pre->data()) + static_cast<size_t>(chunk) * pre_bytes(experts, n);
    return swiglu ? Tensor(base, dt, {2, experts, n, h}, slots.device())
                  : Tensor(base, dt, {experts, n, h}, slots.device());
  };
  if (o.adaptive_r == 0 || group_ == nullptr || group_->size() == 1) {
    const int64_t e = slots.dim(0), c = slots.dim(1);
    if (saved) {
      saved->pre = std::make_unique<Buffer>(device_, pre_bytes(e, c));
      saved->chunk_shape = slots.shape();
    }
    const Tensor pre = saved ? pre_view(0, e, c) : Tensor();
    run_experts(slots, processed, rows, weights, saved ? &pre : nullptr);
    return;
  }
  // NOTE: after the all-to-all a local expert's rows hold W blocks of slots; the grouped row
  // counts no longer describe them, so those GEMMs run padded (unused slots are zero).
  const int64_t w = group_->size(), local = local_experts_, e = slots.dim(0), c = slots.dim(1), m = slots.dim(2);
  const int64_t d = o.overlap_degree, cd = c / d, n = w * cd;  // C is a multiple of d (alignment)
  const size_t row = static_cast<size_t>(m) * dtype_size(dt), chunk_bytes = static_cast<size_t>(e * cd) * row;
  auto input = std::make_unique<Buffer>(device_, chunk_bytes * static_cast<size_t>(d));
  if (saved) saved->pre = std::make_unique<Buffer>(device_, pre_bytes(local, n) * static_cast<size_t>(d));
  Buffer out_space(device_, chunk_bytes);
  std::vector<ChunkStaging> staging(static_cast<size_t>(d), ChunkStaging(chunk_bytes));
  std::vector<std::unique_ptr<comm::PendingOp>> to(static_cast<size_t>(d)), back(static_cast<size_t>(d));
  char* slot_bytes = static_cast<char*>(slots.data());
  auto start_to = [&](int64_t i) {
    copy_chunk(staging[i].send.data(), slot_bytes, e, c, cd, i, row, true);
    to[i] = start_exchange(staging[i].send.data(), staging[i].recv.data(), chunk_bytes / w, o.use_2dh);
  };
  start_to(0);
  for (int64_t i = 0; i < d; ++i) {
    to[i]->wait();
    if (i + 1 < d) start_to(i + 1);  // the next chunk travels while this one computes
    char* in = static_cast<char*>(input->data()) + static_cast<size_t>(i) * chunk_bytes;
    swap_blocks(staging[i].recv.data(), in, w, local, static_cast<size_t>(cd) * row);  // [W][E_l] -> [E_l][W]
    const Tensor pre = saved ? pre_view(i, local, n) : Tensor();
    run_experts(Tensor(in, dt, {local, n, m}, slots.device()), out_space.view(dt, {local, n, m}), nullptr, weights,
                saved ? &pre : nullptr);
    swap_blocks(static_cast<char*>(out_space.data()), staging[i].back_send.data(), local, w,
                static_cast<size_t>(cd) * row);
    back[i] = start_exchange(staging[i].back_send.data(), staging[i].back_recv.data(), chunk_bytes / w, o.use_2dh);
  }
  for (int64_t i = 0; i < d; ++i) {
    back[i]->wait();
    copy_chunk(staging[i].back_recv.data(), static_cast<char*>(processed.data()), e, c, cd, i, row, false);
  }
  if (saved) {
    saved->input = std::move(input);
    saved->chunk_shape = {local, n, m};
    saved->chunks = d;
  }
}

void MoeLayer::experts_backward(const Tensor& d_processed, const Tensor& d_slots, const Tensor* rows,
                                const ExpertTensors& weights, const ExpertTensors& grads) {
  const Saved& sv = *saved_;
  const DType dt = config_.dtype;
  const std::vector<int64_t>& shape = sv.expert_shape;
  const size_t in_bytes = static_cast<size_t>(shape[0] * shape[1] * shape[2]) * dtype_size(dt);
  const size_t pre_chunk = pre_bytes(shape[0], shape[1]);
  auto saved_input = [&](int64_t i) {
    return Tensor(static_cast<char*>(sv.dispatched->data()) + static_cast<size_t>(i) * in_bytes, dt, shape,
                  d_slots.device());
  };
  auto saved_pre = [&](int64_t i) {
    return Tensor(static_cast<char*>(sv.pre->data()) + static_cast<size_t>(i) * pre_chunk, dt,
                  {static_cast<int64_t>(pre_chunk / dtype_size(dt))}, d_slots.device());
  };
  if (sv.chunks == 1 && (sv.options.adaptive_r == 0 || group_ == nullptr || group_->size() == 1)) {
    backward_experts(d_processed, d_slots, rows, weights, grads, saved_input(0), saved_pre(0));
    return;
  }
  const int64_t w = group_->size(), local = local_experts_, e = d_slots.dim(0), c = d_slots.dim(1), m = d_slots.dim(2);
  const int64_t d = sv.chunks, cd = c / d, n = w * cd;
  const size_t row = static_cast<size_t>(m) * dtype_size(dt), chunk_bytes = static_cast<size_t>(e * cd) * row;
  Buffer out_space(device_, chunk_bytes), in_space(device_, chunk_bytes);
  std::vector<ChunkStaging> staging(static_cast<size_t>(d), ChunkStaging(chunk_bytes));
  std::vector<std::unique_ptr<comm::PendingOp>> to(static_cast<size_t>(d)), back(static_cast<size_t>(d));
  // Chunks after the first add their weight gradients to the first's.
  std::vector<std::unique_ptr<Buffer>> partial_space;
  ExpertTensors partial;
  for (const auto& [name, g] : grads) {
    partial_space.push_back(std::make_unique<Buffer>(device_, g.nbytes()));
    partial[name] = partial_space.back()->view(g.dtype(), g.shape());
  }
  auto start_to = [&](int64_t i) {
    copy_chunk(staging[i].send.data(), static_cast<char*>(d_processed.data()), e, c, cd, i, row, true);
    to[i] = start_exchange(staging[i].send.data(), staging[i].recv.data(), chunk_bytes / w, sv.options.use_2dh);
  };
  start_to(0);
  for (int64_t i = 0; i < d; ++i) {
    to[i]->wait();
    if (i + 1 < d) start_to(i + 1);
    swap_blocks(staging[i].recv.data(), static_cast<char*>(out_space.data()), w, local, static_cast<size_t>(cd) * row);
    backward_experts(out_space.view(dt, {local, n, m}), in_space.view(dt, {local, n, m}), nullptr, weights,
                     i == 0 ? grads : partial, saved_input(i), saved_pre(i));
    if (i > 0)
      for (const auto& [name, g] : grads) add(context_, g, partial.at(name), g);
    swap_blocks(static_cast<char*>(in_space.data()), staging[i].back_send.data(), local, w,
                static_cast<size_t>(cd) * row);
    back[i] =
        start_exchange(staging[i].back_send.data(), staging[i].back_recv.data(), chunk_bytes / w, sv.options.use_2dh);
  }
  for (int64_t i = 0; i < d; ++i) {
    back[i]->wait();
    copy_chunk(staging[i].back_recv.data(), static_cast<char*>(d_slots.data()), e, c, cd, i, row, false);
  }
}

}  // namespace switchyard
