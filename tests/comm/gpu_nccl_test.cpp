// The NCCL engine on the GPU (one rank: the lent machine has one GPU, and NCCL refuses two
// ranks on one device): every collective on device buffers, the data checked on the host.
// Skips, printing why, without a CUDA device or NCCL.
#include <gtest/gtest.h>

#include <numeric>

#include "comm/nccl_communicator.h"
#include "runtime/context.h"
#include "runtime/cuda_device.h"
#include "runtime/elementwise_ops.h"
#include "runtime/tensor.h"

namespace switchyard::comm {
namespace {

class GpuNccl : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string reason = Context::cuda_unavailable_reason();
    if (reason.empty()) reason = NcclLibrary::unavailable_reason();
    if (!reason.empty()) GTEST_SKIP() << "GPU test skipped: " << reason;
  }
};

TEST_F(GpuNccl, CollectivesOnDeviceBuffers) {
  static int argc = 1;
  static char name[] = "gpu_nccl_test";
  static char* args[] = {name, nullptr};
  static char** argv = args;
  static MpiSession mpi(&argc, &argv);  // MPI bootstraps NCCL (a singleton world here)
  auto& gpu = dynamic_cast<CudaDevice&>(Context::global().cuda(0));
  NcclCommunicator nccl(mpi.world(), gpu.communication_hooks());
  ASSERT_EQ(nccl.size(), mpi.world().size());
  const size_t n = 1000 * static_cast<size_t>(nccl.size());
  std::vector<float> host(n), back(n);
  std::iota(host.begin(), host.end(), 1.0f);
  Buffer a(gpu, n * 4), b(gpu, n * 4);
  gpu.copy_from_host(a.data(), host.data(), n * 4);
  nccl.all_to_all(a.data(), b.data(), n / nccl.size(), Element::kFloat32);
  gpu.copy_to_host(back.data(), b.data(), n * 4);
  EXPECT_EQ(back, host) << "one rank: the all-to-all is a copy";
  // A kernel still running on the compute stream when the collective is enqueued on the
  // communication stream: the collective must read what the kernel writes.
  scale(Context::global(), a.view(DType::kFloat32, {static_cast<int64_t>(n)}), 2.0,
        b.view(DType::kFloat32, {static_cast<int64_t>(n)}));
  nccl.all_to_all(b.data(), a.data(), n / nccl.size(), Element::kFloat32);
  gpu.copy_to_host(back.data(), a.data(), n * 4);
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(back[i], 2 * host[i]) << "the exchange ran before the kernel, at " << i;
  gpu.copy_from_host(a.data(), host.data(), n * 4);
  nccl.all_reduce(a.data(), b.data(), n, Element::kFloat32, ReduceOp::kSum);
  gpu.copy_to_host(back.data(), b.data(), n * 4);
  EXPECT_EQ(back[17], host[17] * static_cast<float>(nccl.size()));
  nccl.start_all_to_all(b.data(), a.data(), n / nccl.size(), Element::kFloat32)->wait();
  std::vector<size_t> counts(static_cast<size_t>(nccl.size()), 10);
  nccl.all_gather_v(a.data(), 10, b.data(), counts, Element::kFloat32);
  nccl.all_to_all_v(a.data(), counts, b.data(), counts, Element::kFloat32);
  nccl.reduce_scatter(a.data(), b.data(), n / nccl.size(), Element::kFloat32, ReduceOp::kMax);
  nccl.barrier();
  gpu.copy_to_host(back.data(), b.data(), 4);
  EXPECT_GT(back[0], 0.0f);
}

}  // namespace
}  // namespace switchyard::comm
