// Expert parallelism of MoeLayer over a communicator (tutel-semantics 4.4, 5.2): tokens go to
// the rank holding their expert by all-to-all (adaptive_r = 1), or every rank gathers every
// expert's weights and keeps its tokens (adaptive_r = 0; the weight gradients come back by
// reduce-scatter). Parameter shards never move: r only changes transient exchanges.
#include <cstring>
#include <functional>

#include "core/error.h"
#include "runtime/comm_element.h"
#include "runtime/elementwise_ops.h"
#include "runtime/moe_layer.h"
#include "runtime/moe_saved.h"
#include "runtime/staged_communicator.h"

namespace switchyard {
namespace {

// Every rank's `mine`, rank-major; throws on every rank when an entry from `first_checked` up to
// names.size() differs from rank 0's (the same data reaches every rank, so every rank decides
// alike). Entries past the names are gathered unchecked.
std::vector<int64_t> gather_and_compare(comm::Communicator& group, const std::vector<int64_t>& mine,
                                        const std::vector<const char*>& names, size_t first_checked, const char* what) {
  const size_t n = mine.size(), w = static_cast<size_t>(group.size());
  std::vector<int64_t> all(n * w);
  group.control().all_gather_v(mine.data(), n, all.data(), std::vector<size_t>(w, n), comm::Element::kInt64);
  for (size_t q = 1; q < w; ++q)
    for (size_t i = first_checked; i < names.size(); ++i) {
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
                                     config_.allow_tf32,
                                     static_cast<int64_t>(config_.gates.size())};
  gather_and_compare(*group_, mine,
                     {"model_dim", "hidden_size", "num_experts", "dtype", "expert_type", "activation", "has_fc1_bias",
                      "has_fc2_bias", "fp32_gate", "allow_tf32", "number of gates"},
                     0, "the layer config");
}

MoeLayer::GroupCounts MoeLayer::agree_on_call(int64_t tokens, const std::vector<int>& counts, const ForwardOptions& o) {
  int64_t cf_bits = 0;
  std::memcpy(&cf_bits, &o.capacity_factor, 8);
  std::vector<int64_t> mine = {tokens,
                               *std::max_element(counts.begin(), counts.end()),
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
  const size_t options_size = mine.size();
  mine.insert(mine.end(), counts.begin(), counts.end());  // every expert's count, gathered unchecked
  const auto all = gather_and_compare(
      *group_, mine,
      {"tokens", "max_count", "top_k", "capacity_factor", "adaptive_r", "a2a_ffn_overlap_degree", "is_postscore",
       "normalize_gate", "dropless_grouped", "megablocks_size", "save_for_backward", "use_2dh"},
      2, "the forward options");
  GroupCounts agreed;
  for (size_t q = 0; q < all.size(); q += mine.size()) {
    agreed.most_tokens = std::max(agreed.most_tokens, all[q]);
    agreed.most_count = std::max(agreed.most_count, all[q + 1]);
    agreed.counts.insert(agreed.counts.end(), all.begin() + static_cast<std::ptrdiff_t>(q + options_size),
                         all.begin() + static_cast<std::ptrdiff_t>(q + mine.size()));
  }
  return agreed;
}

MoeLayer::ExpertTensors MoeLayer::expert_weights(int adaptive_r, std::vector<std::unique_ptr<Buffer>>& storage) {
  if (shards_ > 1) return sharded_weights(adaptive_r, storage);
  ExpertTensors local;
  for (const auto& [name, p] : params_)
    if (name.rfind("experts.", 0) == 0) local[name] = p.buffer->view(p.dtype, p.shape);
  for (const auto& [name, p] : packed_)  // the experts' panels (CPU)
    if (name.find(kPanelsSuffix) != std::string::npos) local[name] = p.buffer->view(p.dtype, p.shape);
  for (const auto& [weight, copy] : expert_copies_) {  // their transposed copies (CUDA)
    const Param& p = packed_.at(copy);
    local[copy] = p.buffer->view(p.dtype, p.shape);
  }
  if (adaptive_r != 0 || group_ == nullptr || group_->size() == 1) return local;
  // r = 0: every expert on every rank; shards are contiguous along the expert axis.
  const size_t w = static_cast<size_t>(group_->size());
  ExpertTensors full;
  for (const auto& [name, t] : local) {
    if (packed_.count(name)) continue;  // copies are made from the gathered weights below; panels are only local
    std::vector<int64_t> shape = t.shape();
    shape[0] *= static_cast<int64_t>(w);
    storage.push_back(std::make_unique<Buffer>(device_, t.nbytes() * w));
    group_->all_gather_v(t.data(), t.nbytes(), storage.back()->data(), std::vector<size_t>(w, t.nbytes()),
                         comm::Element::kByte);
    full[name] = storage.back()->view(t.dtype(), shape);
  }
  add_transposed_copies(full, storage);
  return full;
}

void MoeLayer::add_transposed_copies(ExpertTensors& weights, std::vector<std::unique_ptr<Buffer>>& storage) {
  for (const auto& [name, copy] : expert_copies_) {
    const Tensor& w = weights.at(name);
    storage.push_back(std::make_unique<Buffer>(device_, w.nbytes()));
    weights[copy] = storage.back()->view(w.dtype(), {w.dim(0), w.dim(2), w.dim(1)});
    transpose(context_, w, weights.at(copy));
  }
}

MoeLayer::ExpertTensors MoeLayer::expert_gradients(int adaptive_r, std::vector<std::unique_ptr<Buffer>>& storage) {
  ExpertTensors grads;
  if (shards_ > 1) {  // the shapes the experts ran with: all experts (r = 0) or the team's slice
    const int64_t e = adaptive_r == 0 ? config_.num_experts : 1, m = config_.model_dim;
    const int64_t h = adaptive_r == 0 ? config_.hidden_size : config_.hidden_size / adaptive_r;
    const std::map<std::string, std::vector<int64_t>> shapes = {{"experts.batched_fc1_w", {e, h, m}},
                                                                {"experts.batched_fc2_w", {e, h, m}},
                                                                {"experts.batched_fc1_bias", {e, h}},
                                                                {"experts.batched_fc2_bias", {e, m}}};
    for (const auto& [name, g] : grads_) {
      if (!shapes.count(name)) continue;
      int64_t count = 1;
      for (int64_t dim : shapes.at(name)) count *= dim;
      storage.push_back(std::make_unique<Buffer>(device_, static_cast<size_t>(count) * dtype_size(g.dtype)));
      grads[name] = storage.back()->view(g.dtype, shapes.at(name));
    }
    return grads;
  }
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

void MoeLayer::scatter_expert_gradients(const ExpertTensors& full, int adaptive_r) {
  for (const auto& [name, t] : full) {
    const Tensor mine = gradient(name);
    if (t.data() == mine.data()) continue;  // already this rank's shard
    if (shards_ > 1) {
      scatter_sharded_gradient(name, t, mine, adaptive_r);
      continue;
    }
    // Every rank computed all experts' gradients from its own tokens: sum them per shard.
    group_->reduce_scatter(t.data(), mine.data(), static_cast<size_t>(mine.numel()), comm_element(t.dtype()),
                           comm::ReduceOp::kSum);
  }
}

namespace {

// Chunk i of the capacity axis of slots [E, C, M] (rows [i * cd, (i + 1) * cd) of every expert)
// to or from a packed [E, cd, M].
void copy_chunk(Device& device, void* packed, void* slots, int64_t experts, int64_t c, int64_t cd, int64_t i,
                size_t row, bool to_packed) {
  const size_t width = static_cast<size_t>(cd) * row, slots_pitch = static_cast<size_t>(c) * row;
  char* at_slots = static_cast<char*>(slots) + static_cast<size_t>(i) * width;
  const auto rows = static_cast<size_t>(experts);
  if (to_packed)
    device.copy_2d(packed, width, at_slots, slots_pitch, width, rows);
  else
    device.copy_2d(at_slots, slots_pitch, packed, width, width, rows);
}

// [a][b] blocks of `block` bytes -> [b][a]: row i of blocks becomes column i.
void swap_blocks(Device& device, const void* in, void* out, int64_t a, int64_t b, size_t block) {
  for (int64_t i = 0; i < a; ++i)
    device.copy_2d(static_cast<char*>(out) + static_cast<size_t>(i) * block, static_cast<size_t>(a) * block,
                   static_cast<const char*>(in) + static_cast<size_t>(i * b) * block, block, block,
                   static_cast<size_t>(b));
}

// Send, receive and permute staging of one chunk: [W][E_local][cd][M] each. `recv` only when
// the chunk is permuted after it arrives (not by source rank, where it lands in its input).
struct ChunkStaging {
  Buffer send, recv, back_send, back_recv;
  ChunkStaging(Device& device, size_t bytes, bool permuted)
      : send(device, bytes), recv(device, permuted ? bytes : 0), back_send(device, bytes), back_recv(device, bytes) {}
};

}  // namespace

std::unique_ptr<comm::PendingOp> MoeLayer::start_exchange(const void* send, void* recv, size_t bytes_per_rank,
                                                          bool use_2dh) {
  if (!use_2dh) return group_->start_all_to_all(send, recv, bytes_per_rank, comm::Element::kByte);
  if (!two_d_)  // collective; every rank gets here in the same call (use_2dh is agreed on)
    two_d_ = std::make_unique<comm::HierarchicalAllToAll>(*group_, comm::local_size_from_environment(group_->size()),
                                                          device_memory_ops(device_));
  return two_d_->start(send, recv, bytes_per_rank, comm::Element::kByte);
}

size_t MoeLayer::pre_bytes(int64_t experts, int64_t rows, int64_t hidden) const {
  const int64_t copies = config_.expert_type == ExpertType::kSwiglu ? 2 : 1;
  return static_cast<size_t>(copies * experts * rows * hidden) * dtype_size(config_.dtype);
}

int64_t MoeLayer::hidden_of(const ExpertTensors& weights) const {
  if (config_.custom_experts) return 0;  // nothing of the layer's kept between the user's calls
  return config_.expert_type == ExpertType::kFfn ? weights.at("experts.batched_fc1_w").dim(1)
                                                 : weights.at("experts.W_fc1").dim(2);
}

std::unique_ptr<Buffer> MoeLayer::piece_rows_on_device(const std::vector<int>& source_rows, int64_t chunks,
                                                       int64_t c) const {
  const int64_t w = group_->size(), cd = c / chunks, pieces = chunks * w;
  std::vector<int> rows(static_cast<size_t>(pieces * local_experts_));
  for (int64_t piece = 0; piece < pieces; ++piece) {
    const int64_t chunk = piece / w, q = piece % w;
    for (int64_t e = 0; e < local_experts_; ++e)
      rows[piece * local_experts_ + e] =
          static_cast<int>(std::clamp<int64_t>(source_rows[q * local_experts_ + e] - chunk * cd, 0, cd));
  }
  auto on_device = std::make_unique<Buffer>(device_, rows.size() * sizeof(int));
  device_.copy_from_host(on_device->data(), rows.data(), rows.size() * sizeof(int));
  return on_device;
}

Tensor MoeLayer::piece_rows(const Buffer& rows, int64_t piece) const {
  return Tensor(static_cast<int*>(rows.data()) + piece * local_experts_, DType::kInt32, {local_experts_},
                device_.ref());
}

void MoeLayer::experts_forward(const Tensor& slots, const Tensor& processed, const Tensor* rows,
                               const ExpertTensors& weights, const ForwardOptions& o, ExpertsSaved* saved,
                               const std::vector<int>& source_rows) {
  const DType dt = config_.dtype;
  const bool swiglu = config_.expert_type == ExpertType::kSwiglu;
  const int64_t h = hidden_of(weights);
  if (shards_ > 1 && o.adaptive_r >= 1) return sharded_forward(slots, processed, weights, o, saved);
  auto pre_view = [&](int64_t chunk, int64_t experts, int64_t n) {
    char* base = static_cast<char*>(saved->pre->data()) + static_cast<size_t>(chunk) * pre_bytes(experts, n, h);
    return swiglu ? Tensor(base, dt, {2, experts, n, h}, slots.device())
                  : Tensor(base, dt, {experts, n, h}, slots.device());
  };
  if (o.adaptive_r == 0 || group_ == nullptr || group_->size() == 1) {
    const int64_t e = slots.dim(0), c = slots.dim(1);
    if (saved) {
      saved->pre = std::make_unique<Buffer>(device_, pre_bytes(e, c, h));
      saved->chunk_shape = slots.shape();
    }
    const Tensor pre = saved ? pre_view(0, e, c) : Tensor();
    run_experts(slots, processed, rows, weights, saved ? &pre : nullptr);
    return;
  }
  // Padded, the W blocks of slots a local expert receives are one batch of W * C / d rows; dropless
  // grouped, each source rank's block is its own grouped GEMM over the slots that hold tokens.
  const bool by_source = !source_rows.empty();
  const int64_t d = o.overlap_degree, c = slots.dim(1), m = slots.dim(2);
  const int64_t pieces = by_source ? d * group_->size() : d, n = by_source ? c / d : group_->size() * c / d;
  const size_t chunk_bytes = slots.nbytes() / static_cast<size_t>(d);  // one chunk, any layout
  auto input = std::make_unique<Buffer>(device_, slots.nbytes());
  std::unique_ptr<Buffer> rows_of_pieces = by_source ? piece_rows_on_device(source_rows, d, c) : nullptr;
  if (saved)
    saved->pre = std::make_unique<Buffer>(device_, pre_bytes(local_experts_, n, h) * static_cast<size_t>(pieces));
  pipelined_exchange(
      slots, processed, d, o.use_2dh, by_source,
      [&](int64_t i) { return static_cast<char*>(input->data()) + static_cast<size_t>(i) * chunk_bytes; },
      [&](int64_t p, const Tensor& in, const Tensor& out) {
        const Tensor pre = saved ? pre_view(p, local_experts_, n) : Tensor();
        const Tensor used = by_source ? piece_rows(*rows_of_pieces, p) : Tensor();
        run_experts(in, out, by_source ? &used : nullptr, weights, saved ? &pre : nullptr);
      });
  if (saved) {
    saved->input = std::move(input);
    saved->chunk_shape = {local_experts_, n, m};
    saved->chunks = pieces;
    saved->piece_rows = std::move(rows_of_pieces);
  }
}

bool MoeLayer::experts_ran_locally() const {
  const Saved& sv = *saved_;
  const bool sharded = shards_ > 1 && sv.options.adaptive_r >= 1;
  return !sharded && sv.experts.chunks == 1 && (sv.options.adaptive_r == 0 || group_ == nullptr || group_->size() == 1);
}

bool MoeLayer::experts_backward_writes_input(bool input_grad) const {
  return input_grad || config_.custom_experts != nullptr || !experts_ran_locally();
}

void MoeLayer::experts_backward(const Tensor& d_processed, const Tensor& d_slots, const Tensor* rows,
                                const ExpertTensors& weights, const ExpertTensors& grads, bool input_grad) {
  const Saved& sv = *saved_;
  if (shards_ > 1 && sv.options.adaptive_r >= 1) return sharded_backward(d_processed, d_slots, weights, grads);
  const DType dt = config_.dtype;
  const std::vector<int64_t>& shape = sv.experts.chunk_shape;
  const size_t in_bytes = static_cast<size_t>(shape[0] * shape[1] * shape[2]) * dtype_size(dt);
  const size_t pre_chunk = pre_bytes(shape[0], shape[1], hidden_of(weights));
  auto saved_input = [&](int64_t i) {
    return Tensor(static_cast<char*>(sv.experts.input->data()) + static_cast<size_t>(i) * in_bytes, dt, shape,
                  d_slots.device());
  };
  auto saved_pre = [&](int64_t i) {
    return Tensor(static_cast<char*>(sv.experts.pre->data()) + static_cast<size_t>(i) * pre_chunk, dt,
                  {static_cast<int64_t>(pre_chunk / dtype_size(dt))}, d_slots.device());
  };
  if (experts_ran_locally()) {
    backward_experts(d_processed, d_slots, rows, weights, grads, saved_input(0), saved_pre(0), input_grad);
    return;
  }
  // Pieces after the first add their weight gradients to the first's.
  std::vector<std::unique_ptr<Buffer>> partial_space;
  ExpertTensors partial;
  for (const auto& [name, g] : grads) {
    partial_space.push_back(std::make_unique<Buffer>(device_, g.nbytes()));
    partial[name] = partial_space.back()->view(g.dtype(), g.shape());
  }
  // Per source rank, each chunk lands where it is read (the next one arrives meanwhile): d chunks.
  const bool by_source = sv.experts.piece_rows != nullptr;
  const int64_t d = sv.options.overlap_degree;
  const size_t chunk_bytes = d_slots.nbytes() / static_cast<size_t>(d);
  Buffer received(device_, by_source ? d_slots.nbytes() : in_bytes);
  pipelined_exchange(
      d_processed, d_slots, d, sv.options.use_2dh, by_source,
      [&](int64_t i) {
        return static_cast<char*>(received.data()) + (by_source ? static_cast<size_t>(i) * chunk_bytes : 0);
      },
      [&](int64_t p, const Tensor& d_out, const Tensor& d_in) {
        const Tensor used = by_source ? piece_rows(*sv.experts.piece_rows, p) : Tensor();
        backward_experts(d_out, d_in, by_source ? &used : nullptr, weights, p == 0 ? grads : partial, saved_input(p),
                         saved_pre(p));
        if (p > 0)
          for (const auto& [name, g] : grads) add(context_, g, partial.at(name), g);
      });
}

void MoeLayer::pipelined_exchange(const Tensor& from, const Tensor& to, int64_t d, bool use_2dh, bool by_source,
                                  const std::function<char*(int64_t)>& input_of, const ChunkCompute& compute) {
  const DType dt = from.dtype();
  const int64_t w = group_->size(), local = local_experts_, e = from.dim(0), c = from.dim(1), m = from.dim(2);
  const int64_t cd = c / d, n = w * cd;  // C is a multiple of d (alignment)
  const size_t row = static_cast<size_t>(m) * dtype_size(dt), chunk_bytes = static_cast<size_t>(e * cd) * row;
  const size_t block = static_cast<size_t>(cd) * row;      // one expert's rows of one chunk from one rank
  Buffer out_space(device_, by_source ? 0 : chunk_bytes);  // by source, compute writes what goes back
  std::vector<ChunkStaging> staging;
  for (int64_t i = 0; i < d; ++i) staging.emplace_back(device_, chunk_bytes, !by_source);
  std::vector<std::unique_ptr<comm::PendingOp>> there(static_cast<size_t>(d)), back(static_cast<size_t>(d));
  auto send = [&](int64_t i) {
    copy_chunk(device_, staging[i].send.data(), from.data(), e, c, cd, i, row, true);
    void* arrival = by_source ? input_of(i) : staging[i].recv.data();
    there[i] = start_exchange(staging[i].send.data(), arrival, chunk_bytes / w, use_2dh);
  };
  send(0);
  for (int64_t i = 0; i < d; ++i) {
    there[i]->wait();
    if (i + 1 < d) send(i + 1);  // the next chunk travels while this one computes
    char* in = input_of(i);
    if (by_source) {  // [W][E_l][cd][M] as it arrived and as it goes back
      const size_t piece = chunk_bytes / static_cast<size_t>(w);
      char* back_send = static_cast<char*>(staging[i].back_send.data());
      for (int64_t q = 0; q < w; ++q)
        compute(i * w + q, Tensor(in + static_cast<size_t>(q) * piece, dt, {local, cd, m}, from.device()),
                Tensor(back_send + static_cast<size_t>(q) * piece, dt, {local, cd, m}, from.device()));
    } else {
      swap_blocks(device_, staging[i].recv.data(), in, w, local, block);  // [W][E_l] -> [E_l][W]
      compute(i, Tensor(in, dt, {local, n, m}, from.device()), out_space.view(dt, {local, n, m}));
      swap_blocks(device_, out_space.data(), staging[i].back_send.data(), local, w, block);
    }
    back[i] = start_exchange(staging[i].back_send.data(), staging[i].back_recv.data(), chunk_bytes / w, use_2dh);
  }
  for (int64_t i = 0; i < d; ++i) {
    back[i]->wait();
    copy_chunk(device_, staging[i].back_recv.data(), to.data(), e, c, cd, i, row, false);
  }
}

namespace {

// [groups, copies * count]: each group's `count` bytes repeated `copies` times.
std::unique_ptr<Buffer> replicate(Device& device, const void* in, int64_t groups, int64_t copies, size_t count) {
  auto out = std::make_unique<Buffer>(device, static_cast<size_t>(groups * copies) * count);
  for (int64_t t = 0; t < copies; ++t)
    device.copy_2d(static_cast<char*>(out->data()) + static_cast<size_t>(t) * count,
                   static_cast<size_t>(copies) * count, in, count, count, static_cast<size_t>(groups));
  return out;
}

// [groups, width] rows of `width` bytes, each placed at the start of a `pitch`-byte row of a
// zeroed [groups, pitch] (a whole bias gradient into its padded slices).
std::unique_ptr<Buffer> spread_rows(Device& device, const void* in, int64_t groups, size_t width, size_t pitch) {
  auto out = std::make_unique<Buffer>(device, static_cast<size_t>(groups) * pitch);
  device.fill_zero(out->data(), out->bytes());
  device.copy_2d(out->data(), pitch, in, width, width, static_cast<size_t>(groups));
  return out;
}

}  // namespace

comm::Communicator& MoeLayer::block_group(int64_t ranks) {
  std::unique_ptr<comm::Communicator>& block = block_groups_[ranks];
  if (!block) block = group_->split(static_cast<int>(group_->rank() / ranks), group_->rank());  // collective
  return *block;
}

MoeLayer::ExpertTensors MoeLayer::sharded_weights(int adaptive_r, std::vector<std::unique_ptr<Buffer>>& storage) {
  const DType dt = config_.dtype;
  const size_t el = dtype_size(dt);
  const int64_t s = shards_, m = config_.model_dim, padded = (m + s - 1) / s;
  // r = 0: every rank rebuilds every expert; r >= 1: a team of s / r ranks pools its slices.
  comm::Communicator& hidden_group = adaptive_r == 0 ? *group_ : block_group(s / adaptive_r);
  const int64_t e_out = adaptive_r == 0 ? config_.num_experts : 1;
  const int64_t h_out = adaptive_r == 0 ? config_.hidden_size : config_.hidden_size / adaptive_r;
  ExpertTensors w;
  auto gather = [&](comm::Communicator& g, const std::string& name) {
    const Tensor mine = parameter(name);
    storage.push_back(std::make_unique<Buffer>(device_, mine.nbytes() * static_cast<size_t>(g.size())));
    g.all_gather_v(mine.data(), mine.nbytes(), storage.back()->data(),
                   std::vector<size_t>(static_cast<size_t>(g.size()), mine.nbytes()), comm::Element::kByte);
    return static_cast<char*>(storage.back()->data());
  };
  // Slices gather in rank order: [E][s][H/s] = [E][H] for the whole group, [H/r] for a team.
  for (const char* name : {"experts.batched_fc1_w", "experts.batched_fc2_w"})
    w[name] = Tensor(gather(hidden_group, name), dt, {e_out, h_out, m}, device_.ref());
  if (config_.has_fc1_bias)
    w["experts.batched_fc1_bias"] =
        Tensor(gather(hidden_group, "experts.batched_fc1_bias"), dt, {e_out, h_out}, device_.ref());
  add_transposed_copies(w, storage);
  if (config_.has_fc2_bias) {  // whole biases from the padded slices; each of r copies adds b / r
    const char* slices = gather(adaptive_r == 0 ? *group_ : block_group(s), "experts.batched_fc2_bias");
    storage.push_back(std::make_unique<Buffer>(device_, static_cast<size_t>(e_out * m) * el));
    device_.copy_2d(storage.back()->data(), static_cast<size_t>(m) * el, slices, static_cast<size_t>(s * padded) * el,
                    static_cast<size_t>(m) * el, static_cast<size_t>(e_out));
    const Tensor bias = storage.back()->view(dt, {e_out, m});
    if (adaptive_r > 1) scale(context_, bias, 1.0 / adaptive_r, bias);
    w["experts.batched_fc2_bias"] = bias;
  }
  return w;
}

void MoeLayer::scatter_sharded_gradient(const std::string& name, const Tensor& full, const Tensor& mine,
                                        int adaptive_r) {
  const comm::Element element = comm_element(full.dtype());
  const int64_t s = shards_;
  if (name != "experts.batched_fc2_bias") {
    (adaptive_r == 0 ? *group_ : block_group(s / adaptive_r))
        .reduce_scatter(full.data(), mine.data(), static_cast<size_t>(mine.numel()), element, comm::ReduceOp::kSum);
    return;
  }
  // The bias gradient per expert [e, M] -> padded [e][s][ceil(M / s)], then summed over the
  // expert's ranks (r copies each used b / r) into this rank's slice.
  const size_t el = dtype_size(full.dtype());
  const int64_t e = full.dim(0), m = full.dim(1), padded = mine.dim(1);
  const auto spread =
      spread_rows(device_, full.data(), e, static_cast<size_t>(m) * el, static_cast<size_t>(s * padded) * el);
  const Tensor spread_t = spread->view(full.dtype(), {e * s * padded});
  if (adaptive_r > 1) scale(context_, spread_t, 1.0 / adaptive_r, spread_t);
  (adaptive_r == 0 ? *group_ : block_group(s))
      .reduce_scatter(spread->data(), mine.data(), static_cast<size_t>(padded), element, comm::ReduceOp::kSum);
}

void MoeLayer::sharded_exchange(const Tensor& from, const Tensor& to, int adaptive_r, bool use_2dh, char* input,
                                const ChunkCompute& compute) {
  const DType dt = from.dtype();
  const int64_t w = group_->size(), e = from.dim(0), c = from.dim(1), m = from.dim(2), r = adaptive_r;
  const int64_t piece = r * c / shards_, n = w * piece;  // C % s == 0 (alignment)
  const size_t row = static_cast<size_t>(m) * dtype_size(dt);
  // r copies of each expert's C slots, cut into s pieces: piece q to the expert's rank q.
  const auto send = replicate(device_, from.data(), e, r, static_cast<size_t>(c) * row);
  start_exchange(send->data(), input, static_cast<size_t>(piece) * row, use_2dh)->wait();
  Buffer out(device_, static_cast<size_t>(n) * row);
  compute(0, Tensor(input, dt, {1, n, m}, from.device()), out.view(dt, {1, n, m}));
  Buffer back(device_, send->bytes());
  start_exchange(out.data(), back.data(), static_cast<size_t>(piece) * row, use_2dh)->wait();
  // The hidden slices' partial sums (in backward: the copies' input gradients), in copy order.
  sum_rows(context_, back.view(dt, {e, r, c * m}), Tensor(to.data(), dt, {e, c * m}, to.device()));
}

void MoeLayer::sharded_forward(const Tensor& slots, const Tensor& processed, const ExpertTensors& weights,
                               const ForwardOptions& o, ExpertsSaved* saved) {
  const int64_t n = group_->size() * o.adaptive_r * slots.dim(1) / shards_, m = slots.dim(2);
  auto input = std::make_unique<Buffer>(device_, static_cast<size_t>(n * m) * dtype_size(config_.dtype));
  Tensor pre;
  if (saved) {
    saved->pre = std::make_unique<Buffer>(device_, pre_bytes(1, n, hidden_of(weights)));
    pre = saved->pre->view(config_.dtype, {1, n, hidden_of(weights)});  // sharded experts are FFN experts
  }
  sharded_exchange(slots, processed, o.adaptive_r, o.use_2dh, static_cast<char*>(input->data()),
                   [&](int64_t, const Tensor& in, const Tensor& out) {
                     run_experts(in, out, nullptr, weights, saved ? &pre : nullptr);
                   });
  if (saved) {
    saved->input = std::move(input);
    saved->chunk_shape = {1, n, m};
    saved->chunks = 1;
  }
}

void MoeLayer::sharded_backward(const Tensor& d_processed, const Tensor& d_slots, const ExpertTensors& weights,
                                const ExpertTensors& grads) {
  const Saved& sv = *saved_;
  const DType dt = config_.dtype;
  Buffer received(device_, sv.experts.input->bytes());
  const Tensor pre(sv.experts.pre->data(), dt, {static_cast<int64_t>(sv.experts.pre->bytes() / dtype_size(dt))},
                   d_slots.device());
  sharded_exchange(d_processed, d_slots, sv.options.adaptive_r, sv.options.use_2dh, static_cast<char*>(received.data()),
                   [&](int64_t, const Tensor& d_out, const Tensor& d_in) {
                     backward_experts(d_out, d_in, nullptr, weights, grads, sv.experts.input->view(dt, d_out.shape()),
                                      pre);
                   });
}

}  // namespace switchyard
