// The layer's CUDA kernels on a GPU: the GEMMs (SIMT and tensor-core), the layer's forward and
// its training step, each against the host reference (plain C++, no JIT: the GPU build has no
// CPU layer). Skips, printing why, without a CUDA device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <numeric>
#include <random>

#include "runtime/cuda_device.h"
#include "runtime/gemm_ops.h"
#include "runtime/moe_layer.h"
#include "runtime/safetensors.h"
#include "tests/reference/layer_backward_reference.h"
#include "tests/reference/layer_reference.h"
#include "tests/reference/moe_reference.h"
#include "tests/support/dtype_values.h"
#include "tests/support/test_support.h"

namespace switchyard {
namespace {

using testing::decode_values;
using testing::encode_values;
using testing::relative_error;

// The relative spacing of a dtype's values (its unit roundoff times two).
double epsilon(DType dt) {
  return dt == DType::kFloat32 ? 0x1p-23 : dt == DType::kFloat16 ? 0x1p-10 : 0x1p-7;
}

// Routing is a discontinuous function of the gate logits: a token whose k-th and (k+1)-th logits
// lie within the dtype's rounding of each other may go to another expert on the GPU than in the
// double reference, which moves that token's whole contribution to the gate gradient (one token
// in 300 is about 6% of it). Such tokens are drawn again, so that the comparison measures how the
// gradients round, not a coin flip of the routing. x [S, M] holds values the dtype represents.
void redraw_near_ties(std::vector<double>& x, const std::vector<double>& wg, int64_t m, int64_t experts, int64_t top_k,
                      DType dt, std::mt19937& rng) {
  std::normal_distribution<double> normal;
  const int64_t s = static_cast<int64_t>(x.size()) / m;
  for (int64_t t = 0; t < s; ++t) {
    for (int attempt = 0;; ++attempt) {
      ASSERT_LT(attempt, 100) << "token " << t << " keeps a near tie in its gate logits";
      std::vector<double> logits(experts);
      for (int64_t e = 0; e < experts; ++e)
        for (int64_t i = 0; i < m; ++i) logits[e] += wg[e * m + i] * x[t * m + i];
      std::sort(logits.begin(), logits.end(), std::greater<>());
      const double margin = 8 * epsilon(dt) * std::max(1.0, std::abs(logits[top_k - 1]));
      if (logits[top_k - 1] - logits[top_k] >= margin) break;
      std::vector<double> token(m);
      for (auto& v : token) v = normal(rng);
      const auto rounded = decode_values(encode_values(token, dt), dt);
      std::copy(rounded.begin(), rounded.end(), x.begin() + t * m);
    }
  }
}

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
  const DType dt = GetParam();
  Context& context = Context::global();
  testing::TempDir dir;
  MoeLayerConfig config;
  config.model_dim = 128;
  config.hidden_size = 256;
  config.num_experts = 4;
  config.dtype = dt;
  // Weights drawn here, rounded to the dtype; the reference takes the rounded values.
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> u(-0.09, 0.09);
  const std::map<std::string, std::vector<int64_t>> shapes = {{"gates.0.wg.weight", {4, 128}},
                                                              {"experts.batched_fc1_w", {4, 256, 128}},
                                                              {"experts.batched_fc2_w", {4, 256, 128}},
                                                              {"experts.batched_fc1_bias", {4, 256}},
                                                              {"experts.batched_fc2_bias", {4, 128}}};
  TensorFile file;
  reference::LayerParams params;
  for (const auto& [name, shape] : shapes) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<double> v(n);
    for (auto& x : v) x = u(rng);
    std::string bytes = encode_values(v, dt);
    file[name] = {safetensors_dtype_name(dt), shape, bytes};
    params[name] = decode_values(bytes, dt);
  }
  write_safetensors(dir / "gpu.safetensors", file);
  MoeLayer layer(context, context.cuda(0), config);
  layer.load(dir / "gpu.safetensors");

  const int64_t s = 300;
  std::normal_distribution<double> normal;
  std::vector<double> x(s * config.model_dim);
  for (auto& v : x) v = normal(rng);
  std::string hx = encode_values(x, dt);
  Buffer dx(context.cuda(0), hx.size());
  context.cuda(0).copy_from_host(dx.data(), hx.data(), hx.size());
  for (bool grouped : {false, true}) {
    ForwardOptions o;
    o.capacity_factor = grouped ? 0.0 : 1.0;
    o.dropless_grouped = grouped;
    double l_aux = 0;
    auto want = reference::layer_forward(config, params, decode_values(hx, dt), s, o, &l_aux);
    ForwardResult got = layer.forward(dx.view(dt, {s, config.model_dim}), o);
    EXPECT_NEAR(got.l_aux(), l_aux, 1e-3);
    std::string out(got.output.nbytes(), '\0');
    context.cuda(0).copy_to_host(out.data(), got.output.data(), out.size());
    auto g = decode_values(out, dt);
    // NOTE: besides rounding, a token whose top-2 scores nearly tie may route differently in
    // low precision; allow a few such tokens, none in fp32.
    const double tol = dt == DType::kFloat32 ? 1e-4 : dt == DType::kFloat16 ? 1e-2 : 5e-2;
    int64_t bad_tokens = 0;
    for (int64_t t = 0; t < s; ++t) {
      bool bad = false;
      for (int64_t m = 0; m < config.model_dim; ++m) {
        size_t i = t * config.model_dim + m;
        bad |= std::abs(g[i] - want[i]) > tol * (1 + std::abs(want[i]));
      }
      bad_tokens += bad;
    }
    EXPECT_LE(bad_tokens, dt == DType::kFloat32 ? 0 : 3) << "tokens off the reference (grouped=" << grouped << ")";
  }
}

// Forward + backward + SGD on the GPU against the host reference's gradients (plain C++, so
// this runs in the CUDA-only build), for FFN and SwiGLU experts, with and without capacity.
TEST_P(GpuMoe, TrainingStepMatchesTheReferenceBackward) {
  const DType dt = GetParam();
  Context& context = Context::global();
  Device& gpu = context.cuda(0);
  for (ExpertType expert : {ExpertType::kFfn, ExpertType::kSwiglu}) {
    SCOPED_TRACE(expert == ExpertType::kFfn ? "ffn gelu" : "swiglu");
    testing::TempDir dir;
    MoeLayerConfig config;
    config.model_dim = 128;
    config.hidden_size = 256;
    config.num_experts = 4;
    config.activation = kernels::kActGelu;
    config.expert_type = expert;
    config.dtype = dt;
    MoeLayer on_gpu(context, gpu, config);
    on_gpu.init_parameters(4);
    on_gpu.save(dir / "gpu.safetensors");
    // The reference takes the GPU layer's rounded values exactly.
    reference::LayerParams params;
    for (const auto& [name, t] : read_safetensors(dir / "gpu.safetensors"))
      if (name.front() != '_') params[name] = decode_values(t.bytes, dt);
    const int64_t s = 300, m = config.model_dim;
    std::mt19937 rng(12);
    std::normal_distribution<double> normal;
    std::vector<double> x(s * m), r(s * m);
    for (auto* v : {&x, &r})
      for (auto& e : *v) e = normal(rng);
    std::vector<double> wx = decode_values(encode_values(x, dt), dt);
    redraw_near_ties(wx, params.at("gates.0.wg.weight"), m, config.num_experts, ForwardOptions{}.top_k, dt, rng);
    const std::string hx = encode_values(wx, dt), hr = encode_values(r, dt);
    const auto wr = decode_values(hr, dt);
    Buffer dx(gpu, hx.size()), dr(gpu, hr.size());
    gpu.copy_from_host(dx.data(), hx.data(), hx.size());
    gpu.copy_from_host(dr.data(), hr.data(), hr.size());
    auto host = [&](const Tensor& t) {
      std::string bytes(t.nbytes(), '\0');
      gpu.copy_to_host(bytes.data(), t.data(), bytes.size());
      return decode_values(bytes, t.dtype());
    };
    const double aux_weight = 0.1;
    reference::LayerGradients want;
    for (bool grouped : {false, true}) {
      SCOPED_TRACE(grouped ? "dropless grouped" : "capacity 1.0");
      ForwardOptions o;
      o.save_for_backward = true;
      o.capacity_factor = grouped ? 0.0 : 1.0;
      o.dropless_grouped = grouped;
      on_gpu.forward(dx.view(dt, {s, m}), o);
      BackwardResult g = on_gpu.backward(dr.view(dt, {s, m}), aux_weight);
      want = reference::layer_backward(config, params, wx, wr, s, o, aux_weight);
      // NOTE: fp32 accumulation everywhere; the error is the storage rounding of activations and
      // gradients (2^-24, 2^-11, 2^-8 relative) compounded over three GEMMs.
      const double tol = dt == DType::kFloat32 ? 1e-4 : dt == DType::kFloat16 ? 2e-2 : 8e-2;
      EXPECT_LT(relative_error(host(g.grad_input), want.input), tol) << "grad_input";
      ASSERT_EQ(want.params.size(), on_gpu.parameter_names().size());
      for (const auto& name : on_gpu.parameter_names())
        EXPECT_LT(relative_error(host(on_gpu.gradient(name)), want.params.at(name)), tol) << name;
    }
    // One SGD step from zero momentum moves each parameter by -lr * gradient (the last backward's).
    SgdOptions sgd;
    sgd.lr = 0.01;
    sgd.momentum = 0.5;
    on_gpu.sgd_step(sgd);
    for (const auto& name : on_gpu.parameter_names()) {
      std::vector<double> moved = params.at(name);
      for (size_t i = 0; i < moved.size(); ++i) moved[i] -= sgd.lr * want.params.at(name)[i];
      EXPECT_LT(relative_error(host(on_gpu.parameter(name)), moved), dt == DType::kFloat32 ? 1e-6 : 1e-2)
          << name << " after one SGD step";
    }
  }
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

// Issue 12: weights stream from the file into GPU memory in chunks (here 1000 bytes, so every
// tensor takes several), equal to the file's bytes; a layer loads the same way.
TEST_P(GpuMoe, SafetensorsStreamIntoDeviceMemoryInChunks) {
  const DType dt = GetParam();
  Context& context = Context::global();
  Device& gpu = context.cuda(0);
  testing::TempDir dir;
  MoeLayerConfig config;
  config.model_dim = 64;
  config.hidden_size = 96;
  config.num_experts = 4;
  config.dtype = dt;
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
