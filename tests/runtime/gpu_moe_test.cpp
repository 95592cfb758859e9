// The layer's CUDA kernels on a GPU: the GEMMs (SIMT and tensor-core), the layer's forward and
// its training step, each against the host reference (plain C++, no JIT: the GPU build has no
// CPU layer). Skips, printing why, without a CUDA device.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <numeric>
#include <random>
#include <thread>

#include "runtime/cuda_device.h"
#include "runtime/cuda_driver.h"
#include "runtime/gemm_ops.h"
#include "runtime/moe_layer.h"
#include "runtime/safetensors.h"
#include "tests/reference/moe_reference.h"
#include "tests/runtime/layer_dtype_checks.h"
#include "tests/support/dtype_values.h"
#include "tests/support/test_support.h"

namespace switchyard {
namespace {

using testing::decode_values;
using testing::encode_values;

class GpuMoe : public ::testing::TestWithParam<DType> {
 protected:
  void SetUp() override {
    std::string reason = Context::cuda_unavailable_reason();
    if (!reason.empty()) GTEST_SKIP() << "GPU test skipped: " << reason;
  }
};

TEST_P(GpuMoe, GemmMatchesReference) {
  const DType dt = GetParam();
  Context& context = Context::global();
  Device& gpu = context.cuda(0);
  std::mt19937 rng(8);
  std::uniform_real_distribution<double> u(-1, 1);
  struct Case {
    int64_t batch, rows, k, n;
    bool bias;
  };
  // n % 128 == 0 and k % 32 == 0 take the tensor-core kernel for f16/bf16; the rest SIMT.
  for (const Case c : {Case{2, 200, 64, 256, true}, Case{3, 128, 96, 128, false}, Case{1, 77, 40, 72, true},
                       Case{4, 5, 32, 128, true}}) {
    std::vector<double> a(c.batch * c.rows * c.k), w(c.batch * c.k * c.n), bias(c.batch * c.n);
    for (auto* v : {&a, &w, &bias})
      for (auto& x : *v) x = u(rng);
    std::string ha = encode_values(a, dt), hw = encode_values(w, dt), hb = encode_values(bias, dt);
    Buffer da(gpu, ha.size()), dw(gpu, hw.size()), db(gpu, hb.size()), dc(gpu, c.batch * c.rows * c.n * dtype_size(dt));
    gpu.copy_from_host(da.data(), ha.data(), ha.size());
    gpu.copy_from_host(dw.data(), hw.data(), hw.size());
    gpu.copy_from_host(db.data(), hb.data(), hb.size());
    Tensor tb = db.view(dt, {c.batch, c.n});
    // float32 runs twice: on CUDA cores, then on tensor cores in TF32 where the shape allows.
    for (bool tf32 : {false, true}) {
      if (tf32 && dt != DType::kFloat32) continue;
      GemmOptions options;
      options.bias = c.bias ? &tb : nullptr;
      options.activation = kernels::kActRelu;
      options.allow_tf32 = tf32;
      batched_gemm(context, da.view(dt, {c.batch, c.rows, c.k}), dw.view(dt, {c.batch, c.k, c.n}),
                   dc.view(dt, {c.batch, c.rows, c.n}), options);
      std::string out(dc.bytes(), '\0');
      gpu.copy_to_host(out.data(), dc.data(), out.size());
      auto bias_used = decode_values(hb, dt);
      auto want = reference::gemm(decode_values(ha, dt), decode_values(hw, dt), c.bias ? &bias_used : nullptr, c.batch,
                                  c.rows, c.k, c.n, false, reference::Act::kRelu);
      auto got = decode_values(out, dt);
      // NOTE: fp32 accumulation of exact products; the error is the final rounding to the dtype.
      // TF32 keeps 10 mantissa bits of each input: about 1e-3 per product, summed over K.
      const double tol = dt == DType::kFloat32 ? (tf32 ? 2e-2 : 1e-4) : dt == DType::kFloat16 ? 4e-3 : 3e-2;
      for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], tol * (1 + std::abs(want[i]))) << i;
    }
  }
}

TEST_P(GpuMoe, LayerMatchesReference) {
  testing::expect_layer_matches_reference(Context::global(), Context::global().cuda(0), GetParam());
}

// Forward + backward + SGD on the GPU against the host reference's gradients (plain C++, so
// this runs in the CUDA-only build), for FFN and SwiGLU experts, with and without capacity.
TEST_P(GpuMoe, TrainingStepMatchesTheReferenceBackward) {
  testing::expect_training_step_matches_reference(Context::global(), Context::global().cuda(0), GetParam());
  // float32 with TF32: on a Hopper GPU every expert GEMM on wgmma, fc1 read as stored in the
  // forward, fc2 through its transposed copy, fc1's copy in the input gradient, and the weight
  // gradients on operands transposed for the call.
  if (GetParam() == DType::kFloat32)
    testing::expect_training_step_matches_reference(Context::global(), Context::global().cuda(0), GetParam(), true);
}

// An optimizer outside the layer writes the parameters through views: parameters_updated()
// refreshes the transposed copies the GPU's GEMMs read (for TF32 on Hopper, fc2's and fc1's).
TEST_P(GpuMoe, ParameterWritesReachTheNextForward) {
  testing::expect_parameter_writes_reach_forward(Context::global(), Context::global().cuda(0), GetParam());
  if (GetParam() == DType::kFloat32)  // fc2's and fc1's copies (TF32 on Hopper) follow the writes too
    testing::expect_parameter_writes_reach_forward(Context::global(), Context::global().cuda(0), GetParam(), true);
}

// Two top gates: after SGD with gate 1, each gate's next forward uses the layer's parameters.
TEST_P(GpuMoe, SgdStepReachesTheGateItUsed) {
  testing::expect_sgd_step_reaches_the_gate_it_used(Context::global(), Context::global().cuda(0), GetParam());
}

// The cosine_top gate on the GPU (cuda/cosine.cuh and the gate's GEMMs): the forward in every
// dtype, and in float32 every gate parameter's gradient against differences of the reference.
TEST_P(GpuMoe, CosineGateMatchesTheReference) {
  Context& context = Context::global();
  testing::expect_cosine_forward_matches_reference(context, context.cuda(0), GetParam());
  if (GetParam() == DType::kFloat32) {
    testing::expect_cosine_gradients_match_differences(context, context.cuda(0), DType::kFloat32, {});
    testing::expect_cosine_gradients_match_differences(context, context.cuda(0), DType::kFloat32, 5.0);
  }
}

// Issue 14: CUDA tensors through DLPack and the C API, the path of the Python module's CUDA
// tensors (the GPU machine has no PyTorch to run python_test).
TEST_P(GpuMoe, DlpackPassesCudaTensorsWithoutCopies) {
  testing::expect_dlpack_passes_tensors_without_copies(Context::global().cuda(0), GetParam());
}

// A small layer on the GPU with inputs and output gradients already there: what the
// steady-state tests step through (forward, backward, SGD) without any host work in between.
struct GpuTrainingSteps {
  GpuTrainingSteps(Device& gpu, DType dt, uint64_t seed)
      : dt(dt), layer(Context::global(), gpu, config_of(dt)), dx(gpu, bytes(dt)), dy(gpu, bytes(dt)) {
    layer.init_parameters(seed);
    std::mt19937 rng(static_cast<unsigned>(seed) + 7);
    std::normal_distribution<double> normal;
    std::vector<double> x(kTokens * kModelDim);
    for (auto& v : x) v = normal(rng);
    const std::string hx = encode_values(x, dt);
    gpu.copy_from_host(dx.data(), hx.data(), hx.size());
    gpu.copy_from_host(dy.data(), hx.data(), hx.size());
  }
  ForwardResult step(ForwardOptions o) {
    o.save_for_backward = true;
    ForwardResult r = layer.forward(dx.view(dt, {kTokens, kModelDim}), o);
    layer.backward(dy.view(dt, {kTokens, kModelDim}), 0.01);
    layer.sgd_step(SgdOptions{});
    return r;
  }

  static constexpr int64_t kTokens = 512, kModelDim = 128;
  static MoeLayerConfig config_of(DType dt) {
    MoeLayerConfig config;
    config.model_dim = kModelDim;
    config.hidden_size = 256;
    config.num_experts = 4;
    config.dtype = dt;
    return config;
  }
  static size_t bytes(DType dt) { return static_cast<size_t>(kTokens * kModelDim) * dtype_size(dt); }

  DType dt;
  MoeLayer layer;
  Buffer dx, dy;
};

// Once a training step has run, the next steps of the same shapes reuse the pool's memory: the
// driver is asked for nothing more (the pool's reservation stays put) and the buffers in use never
// peak higher (nothing accumulates from step to step).
TEST_P(GpuMoe, SteadyStateStepsTakeNoNewMemoryFromTheDriver) {
  auto& gpu = dynamic_cast<CudaDevice&>(Context::global().cuda(0));
  GpuTrainingSteps steps(gpu, GetParam(), 6);
  auto step = [&] { steps.step(ForwardOptions{}); };
  gpu.synchronize();
  gpu.reset_memory_high_water();  // earlier tests' peaks out of the way
  for (int i = 0; i < 2; ++i) step();
  gpu.synchronize();
  const CudaDevice::MemoryHighWater warm = gpu.memory_high_water();
  gpu.reset_memory_high_water();
  for (int i = 0; i < 5; ++i) step();
  gpu.synchronize();
  const CudaDevice::MemoryHighWater later = gpu.memory_high_water();
  EXPECT_GT(warm.used, 0u);
  EXPECT_EQ(later.reserved, warm.reserved) << "the pool asked the driver for more memory in a steady state";
  EXPECT_EQ(later.used, warm.used) << "the buffers in use peaked higher than in the first steps";
}

// Issue 12: the hot path never makes the host wait for the GPU with a positive capacity factor
// (counts, capacity, BPR order, grouped rows and the aux gradient stay on the device).
TEST_P(GpuMoe, SteadyStateStepsNeverWaitForTheDevice) {
  Device& gpu = Context::global().cuda(0);
  GpuTrainingSteps steps(gpu, GetParam(), 7);
  ForwardOptions o;
  o.batch_prioritized_routing = true;
  o.dropless_grouped = true;
  auto step = [&] { return steps.step(o); };
  step();
  const uint64_t before = gpu.host_waits();
  ForwardResult last;
  for (int i = 0; i < 3; ++i) last = step();
  EXPECT_EQ(gpu.host_waits(), before) << "a steady-state step made the host wait for the GPU";
  const std::vector<int> counts = last.expert_counts();
  EXPECT_EQ(std::accumulate(counts.begin(), counts.end(), 0), 2 * GpuTrainingSteps::kTokens);
  EXPECT_TRUE(std::isfinite(last.l_aux()));
}

// Issue 14: under a StreamScope the layer's work goes to the caller's stream. A host function
// queued there first holds the stream: a training step is queued without the host waiting, runs
// neither on the caller's stream nor on the device's own, and once released computes what the
// device's own stream computes; an output handed out there goes back there (the stream is
// destroyed only after it is).
TEST_P(GpuMoe, CallersStreamOrdersTheLayersWork) {
  const DType dt = GetParam();
  auto& gpu = static_cast<CudaDevice&>(Context::global().cuda(0));
  const CudaDriver& driver = CudaDriver::get();
  constexpr CUresult kNotReady = 600;  // CUDA_ERROR_NOT_READY
  GpuTrainingSteps own(gpu, dt, 31), theirs(gpu, dt, 31);
  ForwardOptions training;
  training.save_for_backward = true;
  theirs.layer.prepare(training);  // loading a module may wait for the device: not while it is held
  const ForwardResult expected = own.step(ForwardOptions{});
  std::string want(expected.output.nbytes(), '\0'), got(want.size(), '\0');
  gpu.copy_to_host(want.data(), expected.output.data(), want.size());
  void* const own_stream = gpu.stream();
  CUstream caller = nullptr;
  ASSERT_EQ(driver.cuStreamCreate(&caller, kCuStreamNonBlocking), 0);
  std::atomic<bool> released{false};
  auto hold = [](void* flag) {  // at most 5 s, so that a wrong wait cannot hang the suite
    for (int i = 0; i < 5000 && !static_cast<std::atomic<bool>*>(flag)->load(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  };
  ASSERT_EQ(driver.cuLaunchHostFunc(caller, hold, &released), 0);
  DLManagedTensor* handed = nullptr;
  {
    StreamScope scope(gpu, caller);
    EXPECT_EQ(gpu.stream(), static_cast<void*>(caller));
    const uint64_t waits = gpu.host_waits();
    ForwardResult r = theirs.step(ForwardOptions{});
    EXPECT_EQ(gpu.host_waits(), waits) << "the step waited for the held stream";
    EXPECT_EQ(driver.cuStreamQuery(caller), kNotReady) << "the held stream ran";
    EXPECT_EQ(driver.cuStreamQuery(static_cast<CUstream>(own_stream)), 0) << "the step went to the device's own stream";
    released = true;
    gpu.copy_to_host(got.data(), r.output.data(), got.size());
    handed = to_dlpack_owning(std::move(r.storage), r.output);  // the caller's now: freed on its stream
  }
  EXPECT_EQ(gpu.stream(), own_stream) << "the scope gave the device its own stream back";
  handed->deleter(handed);  // after the scope: on the caller's stream, after the own stream's work
  EXPECT_EQ(got, want) << "the caller's stream computed another output";
  EXPECT_EQ(driver.cuStreamSynchronize(caller), 0);
  EXPECT_EQ(driver.cuStreamDestroy_v2(caller), 0);
}

// Issue 12: weights stream from the file into GPU memory in chunks (here 1000 bytes, so every
// tensor takes several), equal to the file's bytes; a layer loads the same way.
TEST_P(GpuMoe, SafetensorsStreamIntoDeviceMemoryInChunks) {
  const DType dt = GetParam();
  Context& context = Context::global();
  Device& gpu = context.cuda(0);
  testing::TempDir dir;
  const MoeLayerConfig config = testing::layer_config(64, 96, 4, dt);
  MoeLayer a(context, gpu, config), b(context, gpu, config);
  a.init_parameters(21);
  b.init_parameters(22);
  a.save(dir / "a.safetensors");
  const TensorFile bytes = read_safetensors(dir / "a.safetensors");
  SafetensorsReader reader(dir / "a.safetensors", 1000);
  for (const auto& [name, slice] : read_safetensors_index(dir / "a.safetensors")) {
    Buffer on_gpu(gpu, slice.bytes);
    reader.read_into(gpu, slice, on_gpu.data());
    std::string back(slice.bytes, '\0');
    gpu.copy_to_host(back.data(), on_gpu.data(), back.size());
    EXPECT_EQ(back, bytes.at(name).bytes) << name;
  }
  b.load(dir / "a.safetensors");
  for (const auto& name : a.parameter_names()) {
    const Tensor pa = a.parameter(name), pb = b.parameter(name);
    std::string ha(pa.nbytes(), '\0'), hb(pb.nbytes(), '\0');
    gpu.copy_to_host(ha.data(), pa.data(), ha.size());
    gpu.copy_to_host(hb.data(), pb.data(), hb.size());
    EXPECT_EQ(ha, hb) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, GpuMoe, ::testing::Values(DType::kFloat32, DType::kFloat16, DType::kBFloat16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

}  // namespace
}  // namespace switchyard
