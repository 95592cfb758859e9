// The data movement a GPU rank of the distributed layer does on the device: strided copies
// (Device::copy_2d, cuMemcpy2DAsync), and the scale and transpose kernels, against host
// arithmetic. Skips, saying why, without a CUDA device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "core/error.h"
#include "jit/kernels/init_random.h"
#include "runtime/context.h"
#include "runtime/cuda_device.h"
#include "runtime/elementwise_ops.h"
#include "runtime/example_loss.h"
#include "runtime/init_ops.h"
#include "runtime/pinned_host_buffer.h"
#include "tests/reference/example_loss_reference.h"
#include "tests/support/dtype_values.h"

namespace switchyard {
namespace {

class GpuDeviceOps : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string reason = Context::cuda_unavailable_reason();
    if (!reason.empty()) GTEST_SKIP() << "GPU test skipped: " << reason;
  }
};

// The pool keeps what is freed (no driver call on the next step's allocations) until
// trim_memory gives it back: the reserved memory drops by the freed buffer.
TEST_F(GpuDeviceOps, TrimMemoryGivesThePoolsFreedMemoryBack) {
  auto& gpu = static_cast<CudaDevice&>(Context::global().cuda());
  constexpr size_t kBytes = size_t{256} << 20;
  {
    Buffer big(gpu, kBytes);
    gpu.fill_zero(big.data(), kBytes);
  }
  gpu.synchronize();
  gpu.reset_memory_high_water();  // the marks start again from what is reserved now
  const unsigned long long kept = gpu.memory_high_water().reserved;
  EXPECT_GE(kept, kBytes) << "the pool gave a freed buffer back without being asked";
  gpu.trim_memory();
  gpu.synchronize();
  gpu.reset_memory_high_water();
  EXPECT_LE(gpu.memory_high_water().reserved + kBytes, kept) << "trim_memory kept the freed buffer";
  Buffer again(gpu, kBytes);  // and the pool still serves
  gpu.fill_zero(again.data(), kBytes);
  gpu.synchronize();
}

// Staging memory for file loads is page-locked for the GPU (the driver registers it), copies from
// it land, and it is unregistered when it grows and when it goes (a later registration of the same
// range would fail if it were not).
TEST_F(GpuDeviceOps, StagingBuffersArePageLockedAndCopiesFromThemLand) {
  Device& gpu = Context::global().cuda(0);
  constexpr size_t kBytes = size_t{8} << 20;
  std::vector<unsigned char> back(kBytes);
  for (int round = 0; round < 2; ++round) {
    PinnedHostBuffer staging;
    staging.reserve(gpu, kBytes / 2);
    EXPECT_TRUE(staging.pinned()) << "cuMemHostRegister refused the staging memory";
    staging.reserve(gpu, kBytes);  // grows: unregistered, reallocated, registered again
    ASSERT_TRUE(staging.pinned());
    for (size_t i = 0; i < kBytes; ++i) staging.data()[i] = static_cast<char>(i * 13 + round);
    Buffer on_gpu(gpu, kBytes);
    gpu.copy_from_host(on_gpu.data(), staging.data(), kBytes);
    gpu.copy_to_host(back.data(), on_gpu.data(), kBytes);
    for (size_t i = 0; i < kBytes; ++i)
      ASSERT_EQ(back[i], static_cast<unsigned char>(i * 13 + round)) << "byte " << i << " round " << round;
  }
}

TEST_F(GpuDeviceOps, Copy2dMovesRowsBetweenPitches) {
  Device& gpu = Context::global().cuda(0);
  const size_t rows = 300, width = 96, src_pitch = 160, dst_pitch = 128;
  std::vector<unsigned char> src(rows * src_pitch), dst(rows * dst_pitch, 0xAB);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<unsigned char>(i * 7 + i / 251);
  Buffer a(gpu, src.size()), b(gpu, dst.size());
  gpu.copy_from_host(a.data(), src.data(), src.size());
  gpu.copy_from_host(b.data(), dst.data(), dst.size());
  gpu.copy_2d(b.data(), dst_pitch, a.data(), src_pitch, width, rows);
  gpu.copy_to_host(dst.data(), b.data(), dst.size());
  for (size_t r = 0; r < rows; ++r)
    for (size_t i = 0; i < dst_pitch; ++i)
      ASSERT_EQ(dst[r * dst_pitch + i], i < width ? src[r * src_pitch + i] : 0xAB) << "row " << r << " byte " << i;
  EXPECT_THROW(gpu.copy_2d(b.data(), 8, a.data(), 16, 12, 2), UserError) << "a pitch below the width";
}

TEST_F(GpuDeviceOps, ScaleAndTransposeMatchTheHost) {
  Device& gpu = Context::global().cuda(0);
  const int64_t batch = 3, rows = 97, cols = 131, n = batch * rows * cols;
  std::mt19937 rng(3);
  std::normal_distribution<double> normal;
  std::vector<double> x(static_cast<size_t>(n));
  for (auto& v : x) v = normal(rng);
  for (DType dt : {DType::kFloat32, DType::kFloat16, DType::kBFloat16}) {
    SCOPED_TRACE(dtype_name(dt));
    const std::string bytes = testing::encode_values(x, dt);
    const std::vector<double> stored = testing::decode_values(bytes, dt);
    Buffer in(gpu, bytes.size()), out(gpu, bytes.size());
    gpu.copy_from_host(in.data(), bytes.data(), bytes.size());
    transpose(Context::global(), in.view(dt, {batch, rows, cols}), out.view(dt, {batch, cols, rows}));
    std::string back(bytes.size(), '\0');
    gpu.copy_to_host(back.data(), out.data(), back.size());
    const std::vector<double> t = testing::decode_values(back, dt);
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c)
          ASSERT_EQ(t[(b * cols + c) * rows + r], stored[(b * rows + r) * cols + c]) << b << "," << r << "," << c;
    // The scale rounded to float, times x exactly, rounded once to the dtype (nearest even): halving
    // an odd float16 subnormal is a tie that goes to the even neighbour, and 1/3 is inexact.
    for (double factor : {0.5, 1.0 / 3.0}) {
      gpu.copy_from_host(in.data(), bytes.data(), bytes.size());
      scale(Context::global(), in.view(dt, {n}), factor, in.view(dt, {n}));  // in place
      gpu.copy_to_host(back.data(), in.data(), back.size());
      const std::vector<double> got = testing::decode_values(back, dt);
      std::vector<double> exact(stored.size());
      for (size_t i = 0; i < stored.size(); ++i) exact[i] = stored[i] * static_cast<double>(static_cast<float>(factor));
      const std::vector<double> want = testing::decode_values(testing::encode_values(exact, dt), dt);
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(got[i], want[i]) << "scale " << factor << ", element " << i;
    }
  }
}

// Helloworld's loss on the GPU: the loss to double rounding of the host reference, the gradient
// to the rounding of the layer's dtype.
TEST_F(GpuDeviceOps, ExampleLossMatchesTheHost) {
  Device& gpu = Context::global().cuda(0);
  const int b = 16, t = 512, m = 96;
  std::mt19937 rng(9);
  std::normal_distribution<double> normal;
  std::vector<double> y(static_cast<size_t>(b) * t * m);
  for (auto& v : y) v = normal(rng);
  for (DType dt : {DType::kFloat32, DType::kFloat16, DType::kBFloat16}) {
    SCOPED_TRACE(dtype_name(dt));
    const std::string bytes = testing::encode_values(y, dt);
    std::vector<double> want_grad;
    const double want = reference::example_loss(testing::decode_values(bytes, dt), b, t, m, &want_grad);
    Buffer dy(gpu, bytes.size()), dg(gpu, bytes.size());
    gpu.copy_from_host(dy.data(), bytes.data(), bytes.size());
    ExampleLoss loss(Context::global(), gpu, b, t, m);
    const Tensor grad = dg.view(dt, {int64_t{b} * t, m});
    EXPECT_NEAR(loss(dy.view(dt, {int64_t{b} * t, m}), &grad), want, 1e-12 * std::abs(want));
    std::string back(bytes.size(), '\0');
    gpu.copy_to_host(back.data(), dg.data(), back.size());
    const std::vector<double> got = testing::decode_values(back, dt);
    // Both round the double gradient once, so they agree to one step of the dtype's grid (a
    // double-rounding tie apart); gradients below the dtype's smallest subnormal round to zero.
    const std::vector<double> want_rounded = testing::decode_values(testing::encode_values(want_grad, dt), dt);
    const double ulp = dt == DType::kFloat32 ? 0x1p-23 : dt == DType::kFloat16 ? 0x1p-10 : 0x1p-7;
    const double smallest = dt == DType::kFloat32 ? 0x1p-149 : dt == DType::kFloat16 ? 0x1p-24 : 0x1p-133;
    for (size_t i = 0; i < got.size(); ++i)
      ASSERT_NEAR(got[i], want_rounded[i], std::max(ulp * std::abs(want_rounded[i]), smallest)) << i;
  }
}

// Weights drawn on the GPU are the CPU's values (the documented generator, checked bit for bit
// on the CPU in init_random_test) rounded once to the dtype: every bit agrees, slices included.
TEST_F(GpuDeviceOps, RandomFillMatchesTheHostGenerator) {
  Device& gpu = Context::global().cuda(0);
  const int64_t n = 70001, first = 12345;
  for (DType dt : {DType::kFloat32, DType::kFloat16, DType::kBFloat16}) {
    for (bool normal : {false, true}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + (normal ? " normal" : " uniform"));
      const RandomFill fill{.seed = 5, .name = "experts.W_fc1", .first = first, .scale = 0.03, .normal = normal};
      Buffer out(gpu, n * dtype_size(dt));
      fill_random(Context::global(), out.view(dt, {n}), fill);
      std::string back(out.bytes(), '\0');
      gpu.copy_to_host(back.data(), out.data(), back.size());
      const kernels::InitArgs args{nullptr, kernels::init_seed(5, fill.name), first, n, 0.03, normal ? 1 : 0};
      std::vector<double> want(n);
      for (int64_t i = 0; i < n; ++i) want[i] = kernels::init_value(args, first + i);
      ASSERT_EQ(back, testing::encode_values(want, dt)) << "the GPU's bits differ from the host generator's";
    }
  }
}

}  // namespace
}  // namespace switchyard
