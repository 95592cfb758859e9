// MoeLayer over MPI ranks (run under mpirun with 2 and 4 ranks): for every valid adaptive_r and
// overlap degree, outputs and gradients equal those of a single-rank layer holding all the
// experts (the same global weights) on each rank's own tokens; switching r and d compiles and
// moves nothing; mismatched configs and options fail on every rank with a clear error.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "comm/hierarchical.h"
#include "comm/mpi_communicator.h"
#include "core/error.h"
#include "runtime/moe_layer.h"
#include "runtime/staged_communicator.h"
#include "tests/comm/rank_part.h"
#include "tests/support/mpi_test_world.h"
#include "tests/support/test_support.h"

namespace switchyard {
namespace {

std::vector<double> values(const Tensor& t) {
  return std::vector<double>(t.data_as<double>(), t.data_as<double>() + t.numel());
}

MoeLayerConfig global_config(int64_t experts) {
  MoeLayerConfig c;
  c.model_dim = 8;
  c.hidden_size = 12;
  c.num_experts = experts;
  c.dtype = DType::kFloat64;
  c.activation = kernels::kActGelu;
  return c;
}

// This rank's part of the global expert tensor `name` (tests/comm/rank_part.h).
std::vector<double> my_part(const std::string& name, const std::vector<double>& global, int64_t experts,
                            int64_t model_dim) {
  return testing::rank_part(name, global, testing::mpi_world().rank(), testing::mpi_world().size(), experts, model_dim);
}

void expect_near(const std::vector<double>& got, const std::vector<double>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], 1e-11 * (1 + std::abs(want[i]))) << what << "[" << i << "]";
}

TEST(MoeParallel, EveryRAndDMatchesTheSingleRankLayer) {
  comm::Communicator& w = testing::mpi_world();
  for (int64_t per_rank : {1, 2}) {
    const int64_t experts = per_rank * w.size();
    SCOPED_TRACE(std::to_string(experts) + " experts");
    MoeLayer single(Context::global(), Context::global().cpu(), global_config(experts));
    MoeLayer dist(Context::global(), Context::global().cpu(), global_config(experts), &w);
    single.init_parameters(5);
    dist.init_parameters(5);
    ASSERT_EQ(dist.local_experts(), per_rank);
    for (const auto& name : dist.parameter_names()) {
      const auto global = values(single.parameter(name));
      expect_near(values(dist.parameter(name)),
                  name.rfind("experts.", 0) == 0 ? my_part(name, global, experts, 8) : global, "initial " + name);
    }
    std::map<std::string, std::pair<const void*, std::vector<double>>> before;
    for (const auto& name : dist.parameter_names())
      before[name] = {dist.parameter(name).data(), values(dist.parameter(name))};
    std::mt19937 rng(100 + w.rank());
    uint64_t loads_after_first_round = 0;
    for (int round = 0; round < 2; ++round) {
      int trial = 0;
      for (int r : {0, 1})
        for (int d : {1, 2, 3})
          for (double cf : {1.0, 0.0, -1.25}) {
            ++trial;
            ForwardOptions o;
            o.adaptive_r = r;
            o.overlap_degree = d;
            o.capacity_factor = cf;
            o.top_k = 1 + trial % 2;
            o.is_postscore = trial % 3 != 0;
            o.use_2dh = trial % 2 == 0;  // LOCAL_SIZE=2 (ctest): with 4 ranks, 2 nodes of 2
            // Dropless grouped: each source rank's slots are their own GEMM rows (with and without 2DH).
            o.dropless_grouped = cf == 0 && trial % 4 < 2;
            o.save_for_backward = true;
            // Unequal token counts with cf = 0: the group agrees on the largest expert count and
            // drops nothing, as the single-rank layer does. (Otherwise capacity follows the
            // group's largest token count, Tutel's inequivalent_tokens, which a single rank
            // with fewer tokens does not see.)
            const int64_t s = cf == 0 ? 9 + 3 * w.rank() : 12;
            SCOPED_TRACE("r=" + std::to_string(r) + " d=" + std::to_string(d) + " cf=" + std::to_string(cf) +
                         " k=" + std::to_string(o.top_k));
            auto x = testing::random_normal<double>(rng, s * 8), g = testing::random_normal<double>(rng, s * 8);
            ForwardResult got = dist.forward(Tensor(x.data(), DType::kFloat64, {s, 8}), o);
            ForwardResult want = single.forward(Tensor(x.data(), DType::kFloat64, {s, 8}), o);
            expect_near(values(got.output), values(want.output), "output");
            EXPECT_NEAR(got.l_aux(), want.l_aux(), 1e-12);
            auto dx = values(dist.backward(Tensor(g.data(), DType::kFloat64, {s, 8}), 0.1).grad_input);
            expect_near(dx, values(single.backward(Tensor(g.data(), DType::kFloat64, {s, 8}), 0.1).grad_input), "dx");
            for (const auto& name : dist.parameter_names()) {
              auto full = values(single.gradient(name));
              if (name.rfind("experts.", 0) == 0) {  // every rank's tokens reach the expert: sum them
                w.all_reduce(full.data(), full.data(), full.size(), comm::Element::kFloat64, comm::ReduceOp::kSum);
                full = my_part(name, full, experts, 8);
              }
              expect_near(values(dist.gradient(name)), full, "d " + name);
            }
          }
      if (round == 0) loads_after_first_round = Context::global().counters().loads;
    }
    EXPECT_EQ(Context::global().counters().loads, loads_after_first_round) << "switching r, d, k, cf loaded a kernel";
    for (const auto& name : dist.parameter_names()) {
      EXPECT_EQ(dist.parameter(name).data(), before[name].first) << name << " moved";
      EXPECT_EQ(values(dist.parameter(name)), before[name].second) << name << " changed";
    }
  }
}

TEST(MoeParallel, ShardedExpertsMatchTheSingleRankLayerForEveryR) {
  comm::Communicator& w = testing::mpi_world();
  for (int64_t s : {2, 4}) {
    if (w.size() % s != 0) continue;
    const int64_t experts = w.size() / s;
    SCOPED_TRACE(std::to_string(experts) + " experts over " + std::to_string(w.size()) + " ranks");
    MoeLayerConfig config = global_config(experts);
    config.model_dim = 7;  // not a multiple of s: the fc2 bias slices are padded
    MoeLayer single(Context::global(), Context::global().cpu(), config);
    MoeLayer dist(Context::global(), Context::global().cpu(), config, &w);
    single.init_parameters(8);
    dist.init_parameters(8);
    for (const auto& name : dist.parameter_names()) {
      const auto global = values(single.parameter(name));
      expect_near(values(dist.parameter(name)),
                  name.rfind("experts.", 0) == 0 ? my_part(name, global, experts, 7) : global, "initial " + name);
    }
    std::vector<int> rs{0};
    for (int r = 1; r <= s; ++r)
      if (s % r == 0) rs.push_back(r);
    std::mt19937 rng(7 + w.rank());
    for (int r : rs)
      for (int d : {1, 2})
        for (double cf : {0.0, 4.0}) {  // capacity without drops: the alignment differs from one rank's
          SCOPED_TRACE("r=" + std::to_string(r) + " d=" + std::to_string(d) + " cf=" + std::to_string(cf));
          ForwardOptions o;
          o.adaptive_r = r;
          o.overlap_degree = d;
          o.capacity_factor = cf;
          o.top_k = std::min<int64_t>(2, experts);
          o.save_for_backward = true;
          const int64_t tokens = 10 + w.rank();
          auto x = testing::random_normal<double>(rng, tokens * 7), g = testing::random_normal<double>(rng, tokens * 7);
          ForwardResult got = dist.forward(Tensor(x.data(), DType::kFloat64, {tokens, 7}), o);
          ForwardOptions whole = o;  // one rank holds whole experts: s = 1, r is 0 or 1 there
          whole.adaptive_r = 1;
          ForwardResult want = single.forward(Tensor(x.data(), DType::kFloat64, {tokens, 7}), whole);
          expect_near(values(got.output), values(want.output), "output");
          auto dx = values(dist.backward(Tensor(g.data(), DType::kFloat64, {tokens, 7}), 0.1).grad_input);
          expect_near(dx, values(single.backward(Tensor(g.data(), DType::kFloat64, {tokens, 7}), 0.1).grad_input),
                      "dx");
          for (const auto& name : dist.parameter_names()) {
            auto full = values(single.gradient(name));
            if (name.rfind("experts.", 0) == 0) {
              w.all_reduce(full.data(), full.data(), full.size(), comm::Element::kFloat64, comm::ReduceOp::kSum);
              full = my_part(name, full, experts, 7);
            }
            expect_near(values(dist.gradient(name)), full, "d " + name);
          }
        }
  }
}

TEST(MoeParallel, CapacityFollowsTheGroupsLargestTokenCount) {
  comm::Communicator& w = testing::mpi_world();
  const int64_t experts = 2 * w.size();
  MoeLayer layer(Context::global(), Context::global().cpu(), global_config(experts), &w);
  const int64_t s = 6 + 5 * w.rank(), largest = 6 + 5 * (w.size() - 1);
  std::vector<double> x(s * 8, 0.1);
  ForwardOptions o;  // top_k 2, capacity_factor 1: C = 2 * floor(ceil(largest / E))
  EXPECT_EQ(layer.forward(Tensor(x.data(), DType::kFloat64, {s, 8}), o).capacity,
            2 * ((largest + experts - 1) / experts));
}

std::string error_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const UserError& e) {
    return e.what();
  }
  return "no error";
}

// A staged group (what a CUDA layer without NCCL exchanges through) over the CPU device: the
// same collectives and the same layer results, bit for bit, as the host group it wraps, with
// its exchanges, 2DH permutes, sub-groups and started all-to-alls going through the device's
// copies.
TEST(MoeParallel, StagedGroupMatchesTheHostGroup) {
  comm::Communicator& w = testing::mpi_world();
  Device& cpu = Context::global().cpu();
  StagedCommunicator staged(w, cpu);
  EXPECT_EQ(&staged.control(), &w.control());
  EXPECT_EQ(staged.memory(), comm::Memory::kHost) << "CPU device memory is host memory";
  const size_t ranks = static_cast<size_t>(w.size()), me = static_cast<size_t>(w.rank());
  std::vector<size_t> send_counts(ranks), recv_counts(ranks);
  for (size_t q = 0; q < ranks; ++q) {
    send_counts[q] = (me + 2 * q) % 3;  // zero counts included
    recv_counts[q] = (q + 2 * me) % 3;
  }
  std::vector<double> send(12 * ranks);
  for (size_t i = 0; i < send.size(); ++i) send[i] = 100.0 * me + static_cast<double>(i);
  auto both = [&](auto&& collective, size_t out_size) {
    std::vector<double> plain(out_size, -1), through(out_size, -1);
    collective(static_cast<comm::Communicator&>(w), plain.data());
    collective(static_cast<comm::Communicator&>(staged), through.data());
    EXPECT_EQ(through, plain);
  };
  both([&](comm::Communicator& c,
           double* out) { c.all_to_all_v(send.data(), send_counts, out, recv_counts, comm::Element::kFloat64); },
       2 * ranks);
  both(
      [&](comm::Communicator& c, double* out) {
        c.all_gather_v(send.data(), 3, out, std::vector<size_t>(ranks, 3), comm::Element::kFloat64);
      },
      3 * ranks);
  both([&](comm::Communicator& c,
           double* out) { c.all_reduce(send.data(), out, 12, comm::Element::kFloat64, comm::ReduceOp::kSum); },
       12);
  both([&](comm::Communicator& c,
           double* out) { c.reduce_scatter(send.data(), out, 12, comm::Element::kFloat64, comm::ReduceOp::kMax); },
       12);
  both(
      [&](comm::Communicator& c, double* out) {
        auto first = c.start_all_to_all(send.data(), out, 6, comm::Element::kFloat64);
        auto second = c.start_all_to_all(send.data(), out + 6 * ranks, 6, comm::Element::kFloat64);
        second->wait();  // completed in the other order
        first->wait();
      },
      12 * ranks);
  both(
      [&](comm::Communicator& c, double* out) {
        comm::HierarchicalAllToAll two_d(c, comm::local_size_from_environment(c.size()), device_memory_ops(cpu));
        two_d.run(send.data(), out, 12, comm::Element::kFloat64);
      },
      12 * ranks);
  both(
      [&](comm::Communicator& c, double* out) {
        auto half = c.split(c.rank() % 2, c.rank());
        half->all_reduce(send.data(), out, 12, comm::Element::kFloat64, comm::ReduceOp::kSum);
      },
      12);

  for (int64_t experts : {2 * w.size(), std::max(1, w.size() / 2)}) {  // spread, and shared by 2 ranks
    SCOPED_TRACE(std::to_string(experts) + " experts");
    MoeLayer plain(Context::global(), cpu, global_config(experts), &w);
    MoeLayer through(Context::global(), cpu, global_config(experts), &staged);
    plain.init_parameters(3);
    through.init_parameters(3);
    std::mt19937 rng(40 + w.rank());
    const int64_t s = 10;
    for (int r : {0, 1, 2})
      for (int d : {1, 2}) {
        if (r == 2 && experts >= w.size()) continue;  // r > 1 needs shared experts
        ForwardOptions o;
        o.adaptive_r = r;
        o.overlap_degree = d;
        o.use_2dh = d == 2;
        o.top_k = std::min<int64_t>(2, experts);
        o.save_for_backward = true;
        SCOPED_TRACE("r=" + std::to_string(r) + " d=" + std::to_string(d));
        auto x = testing::random_normal<double>(rng, s * 8), g = testing::random_normal<double>(rng, s * 8);
        EXPECT_EQ(values(through.forward(Tensor(x.data(), DType::kFloat64, {s, 8}), o).output),
                  values(plain.forward(Tensor(x.data(), DType::kFloat64, {s, 8}), o).output));
        EXPECT_EQ(values(through.backward(Tensor(g.data(), DType::kFloat64, {s, 8})).grad_input),
                  values(plain.backward(Tensor(g.data(), DType::kFloat64, {s, 8})).grad_input));
        for (const auto& name : plain.parameter_names())
          EXPECT_EQ(values(through.gradient(name)), values(plain.gradient(name))) << name;
      }
  }
}

// A group that takes GPU memory (as NCCL does), to check what a CPU layer says about it.
class GpuMemoryGroup : public StagedCommunicator {
 public:
  using StagedCommunicator::StagedCommunicator;
  comm::Memory memory() const override { return comm::Memory::kDevice; }
};

TEST(MoeParallel, GroupsOfTheWrongMemoryAreRefused) {
  comm::Communicator& w = testing::mpi_world();
  GpuMemoryGroup gpu_group(w, Context::global().cpu());
  auto layer_error =
      error_of([&] { MoeLayer(Context::global(), Context::global().cpu(), global_config(2 * w.size()), &gpu_group); });
  EXPECT_NE(layer_error.find("a CPU layer cannot exchange through"), std::string::npos) << layer_error;
  EXPECT_NE(layer_error.find("pass a host-memory (MPI) communicator"), std::string::npos) << layer_error;
  auto staging_error = error_of([&] { StagedCommunicator(gpu_group, Context::global().cpu()); });
  EXPECT_NE(staging_error.find("needs a host-memory communicator"), std::string::npos) << staging_error;
}

TEST(MoeParallel, DisagreementsFailOnEveryRank) {
  comm::Communicator& w = testing::mpi_world();
  MoeLayerConfig mine = global_config(2 * w.size());
  if (w.rank() == 1) mine.model_dim = 16;
  auto config_error = error_of([&] { MoeLayer(Context::global(), Context::global().cpu(), mine, &w); });
  EXPECT_NE(config_error.find("rank 1 has model_dim = 16, rank 0 has model_dim = 8"), std::string::npos)
      << config_error;
  MoeLayerConfig other_e = global_config(2 * w.size());
  if (w.rank() == 1) other_e.num_experts = w.size();
  auto experts_error = error_of([&] { MoeLayer(Context::global(), Context::global().cpu(), other_e, &w); });
  EXPECT_NE(experts_error.find("rank 1 has num_experts = " + std::to_string(w.size()) +
                               ", rank 0 has num_experts = " + std::to_string(2 * w.size())),
            std::string::npos)
      << experts_error;
  auto fit_error =
      error_of([&] { MoeLayer(Context::global(), Context::global().cpu(), global_config(w.size() + 1), &w); });
  EXPECT_NE(fit_error.find("does not fit a group of " + std::to_string(w.size()) + " ranks"), std::string::npos)
      << fit_error;
  MoeLayer layer(Context::global(), Context::global().cpu(), global_config(2 * w.size()), &w);
  std::vector<double> x(5 * 8, 0.3);
  ForwardOptions o;
  o.adaptive_r = 2;
  auto r_error = error_of([&] { layer.forward(Tensor(x.data(), DType::kFloat64, {5, 8}), o); });
  EXPECT_NE(r_error.find("adaptive_r = 2 does not divide s = 1"), std::string::npos) << r_error;
  o.adaptive_r = 1;
  o.top_k = w.rank() == 1 ? 1 : 2;
  auto k_error = error_of([&] { layer.forward(Tensor(x.data(), DType::kFloat64, {5, 8}), o); });
  EXPECT_NE(k_error.find("rank 1 has top_k = 1, rank 0 has top_k = 2"), std::string::npos) << k_error;
  o.top_k = 2;
  layer.forward(Tensor(x.data(), DType::kFloat64, {5, 8}), o);  // the group still works
}

}  // namespace
}  // namespace switchyard
