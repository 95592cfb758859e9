// The CUDA layer in a group, under mpirun with 2 ranks (on the lent machine both share its one
// GPU): through the MPI group staged through the host, and through NCCL where every rank has a
// GPU of its own, outputs and gradients for every valid adaptive_r and overlap degree equal
// those of a single-rank CUDA layer holding every expert (the same global weights) on the same
// tokens, within float32 reassociation. gpu_moe_test checks that single-rank layer against the
// host reference. Skips, saying why, without a CUDA device (exit 77 when every test skipped).
#include <gtest/gtest.h>

#include <random>

#include "comm/hierarchical.h"
#include "comm/mpi_communicator.h"
#include "comm/nccl_communicator.h"
#include "runtime/cuda_device.h"
#include "runtime/cuda_driver.h"
#include "runtime/moe_layer.h"
#include "tests/comm/rank_part.h"
#include "tests/support/dtype_values.h"
#include "tests/support/mpi_test_world.h"
#include "tests/support/test_support.h"

namespace switchyard {
namespace {

std::vector<double> host_values(const Tensor& t) {
  std::string bytes(t.nbytes(), '\0');
  Context::global().device(t.device()).copy_to_host(bytes.data(), t.data(), bytes.size());
  return testing::decode_values(bytes, t.dtype());
}

// This rank's GPU: its index within the node, over the GPUs there are.
Device& rank_gpu() {
  const int local = testing::mpi_world().rank() % comm::local_size_from_environment(testing::mpi_world().size());
  return Context::global().cuda(local % CudaDriver::get().device_count);
}

class GpuMoeParallel : public ::testing::TestWithParam<std::string> {  // the engine: "mpi" or "nccl"
 protected:
  void SetUp() override {
    std::string reason = Context::cuda_unavailable_reason();
    if (reason.empty() && GetParam() == "nccl") {
      reason = comm::NcclLibrary::unavailable_reason();
      const int ranks_here = comm::local_size_from_environment(testing::mpi_world().size());
      if (reason.empty() && CudaDriver::get().device_count < ranks_here)
        reason = "NCCL needs a GPU per rank: " + std::to_string(ranks_here) + " ranks share " +
                 std::to_string(CudaDriver::get().device_count) + " GPU(s) here (the MPI variant covers this machine)";
    }
    if (!reason.empty()) GTEST_SKIP() << "GPU test skipped: " << reason;
  }
};

TEST_P(GpuMoeParallel, EveryRAndDMatchesTheSingleRankLayer) {
  comm::MpiCommunicator& w = testing::mpi_world();
  Device& gpu = rank_gpu();
  std::unique_ptr<comm::Communicator> nccl;
  comm::Communicator* group = &w;  // a CUDA layer stages a host group itself
  if (GetParam() == "nccl") {
    auto& cuda = dynamic_cast<CudaDevice&>(gpu);
    nccl = std::make_unique<comm::NcclCommunicator>(w, cuda.communication_hooks());
    group = nccl.get();
  }
  const int64_t m = 64;
  std::vector<int64_t> expert_counts{2 * w.size()};
  if (w.size() % 2 == 0) expert_counts.push_back(w.size() / 2);  // each expert shared by 2 ranks
  // float16: its gradients are summed across ranks in float16 (adaptive_r = 0, shared experts).
  for (const auto& [experts, dtype] :
       {std::pair{expert_counts.front(), DType::kFloat32}, std::pair{expert_counts.back(), DType::kFloat32},
        std::pair{expert_counts.back(), DType::kFloat16}}) {
    SCOPED_TRACE(std::to_string(experts) + " experts, " + dtype_name(dtype) + ", " + group->describe());
    const double tol = dtype == DType::kFloat32 ? 1e-5 : 1e-2;  // reassociation, then storage rounding
    MoeLayerConfig config;
    config.model_dim = m;
    config.hidden_size = 96;
    config.num_experts = experts;
    config.dtype = dtype;
    config.activation = kernels::kActGelu;
    MoeLayer single(Context::global(), gpu, config);
    MoeLayer dist(Context::global(), gpu, config, group);
    single.init_parameters(6);
    dist.init_parameters(6);
    for (const auto& name : dist.parameter_names()) {
      const auto global = host_values(single.parameter(name));
      EXPECT_EQ(
          host_values(dist.parameter(name)),
          name.rfind("experts.", 0) == 0 ? testing::rank_part(name, global, w.rank(), w.size(), experts, m) : global)
          << "initial " << name;
    }
    std::vector<int> rs{0, 1};
    if (experts < w.size()) rs.push_back(2);
    std::mt19937 rng(30 + w.rank());
    for (int r : rs)
      for (int d : {1, 2}) {
        SCOPED_TRACE("r=" + std::to_string(r) + " d=" + std::to_string(d));
        ForwardOptions o;
        o.adaptive_r = r;
        o.overlap_degree = d;
        o.use_2dh = d == 2;
        o.capacity_factor = 0.0;  // dropless: unequal token counts, and no capacity the single rank lacks
        o.dropless_grouped = d == 2;  // per source rank: only the slots that hold tokens
        o.top_k = std::min<int64_t>(2, experts);
        o.save_for_backward = true;
        const int64_t s = 96 + 16 * w.rank();
        const std::string x_bytes = testing::encode_values(testing::random_normal<double>(rng, s * m), config.dtype);
        const std::string g_bytes = testing::encode_values(testing::random_normal<double>(rng, s * m), config.dtype);
        Buffer x(gpu, x_bytes.size()), g(gpu, g_bytes.size());
        gpu.copy_from_host(x.data(), x_bytes.data(), x_bytes.size());
        gpu.copy_from_host(g.data(), g_bytes.data(), g_bytes.size());
        ForwardOptions whole = o;  // a single rank holds whole experts: r is 0 or 1 there
        whole.adaptive_r = std::min(r, 1);
        const auto got = host_values(dist.forward(x.view(config.dtype, {s, m}), o).output);
        EXPECT_LT(testing::relative_error(got, host_values(single.forward(x.view(config.dtype, {s, m}), whole).output)),
                  tol)
            << "output";
        const auto dx = host_values(dist.backward(g.view(config.dtype, {s, m}), 0.1).grad_input);
        EXPECT_LT(
            testing::relative_error(dx, host_values(single.backward(g.view(config.dtype, {s, m}), 0.1).grad_input)),
            tol)
            << "dx";
        for (const auto& name : dist.parameter_names()) {
          auto want = host_values(single.gradient(name));
          if (name.rfind("experts.", 0) == 0) {  // every rank's tokens reach the expert: sum them
            w.all_reduce(want.data(), want.data(), want.size(), comm::Element::kFloat64, comm::ReduceOp::kSum);
            want = testing::rank_part(name, want, w.rank(), w.size(), experts, m);
          }
          EXPECT_LT(testing::relative_error(host_values(dist.gradient(name)), want), tol) << "d " << name;
        }
      }
  }
}

INSTANTIATE_TEST_SUITE_P(Engines, GpuMoeParallel, ::testing::Values("mpi", "nccl"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace switchyard
