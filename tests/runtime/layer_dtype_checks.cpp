#include "tests/runtime/layer_dtype_checks.h"

#include <gtest/gtest.h>
#include <switchyard/switchyard_c.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <random>
#include <vector>

#include "runtime/moe_layer.h"
#include "runtime/safetensors.h"
#include "tests/reference/layer_backward_reference.h"
#include "tests/reference/layer_reference.h"
#include "tests/support/dtype_values.h"
#include "tests/support/test_support.h"

namespace switchyard {
namespace testing {
namespace {

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

}  // namespace

MoeLayerConfig layer_config(int64_t model_dim, int64_t hidden_size, int64_t experts, DType dt) {
  MoeLayerConfig config;
  config.model_dim = model_dim;
  config.hidden_size = hidden_size;
  config.num_experts = experts;
  config.dtype = dt;
  return config;
}

void expect_layer_matches_reference(Context& context, Device& device, DType dt) {
  testing::TempDir dir;
  const MoeLayerConfig config = layer_config(128, 256, 4, dt);
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
  write_safetensors(dir / "layer.safetensors", file);
  MoeLayer layer(context, device, config);
  layer.load(dir / "layer.safetensors");

  const int64_t s = 300;
  std::normal_distribution<double> normal;
  std::vector<double> x(s * config.model_dim);
  for (auto& v : x) v = normal(rng);
  std::string hx = encode_values(x, dt);
  Buffer dx(device, hx.size());
  device.copy_from_host(dx.data(), hx.data(), hx.size());
  for (bool grouped : {false, true}) {
    ForwardOptions o;
    o.capacity_factor = grouped ? 0.0 : 1.0;
    o.dropless_grouped = grouped;
    double l_aux = 0;
    auto want = reference::layer_forward(config, params, decode_values(hx, dt), s, o, &l_aux);
    ForwardResult got = layer.forward(dx.view(dt, {s, config.model_dim}), o);
    EXPECT_NEAR(got.l_aux(), l_aux, 1e-3);
    std::string out(got.output.nbytes(), '\0');
    device.copy_to_host(out.data(), got.output.data(), out.size());
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

void expect_training_step_matches_reference(Context& context, Device& device, DType dt, bool allow_tf32) {
  for (ExpertType expert : {ExpertType::kFfn, ExpertType::kSwiglu}) {
    SCOPED_TRACE(expert == ExpertType::kFfn ? "ffn gelu" : "swiglu");
    SCOPED_TRACE(allow_tf32 ? "allow_tf32" : "");
    testing::TempDir dir;
    MoeLayerConfig config;
    config.model_dim = 128;
    config.hidden_size = 256;
    config.num_experts = 4;
    config.activation = kernels::kActGelu;
    config.expert_type = expert;
    config.dtype = dt;
    config.allow_tf32 = allow_tf32;
    MoeLayer layer(context, device, config);
    layer.init_parameters(4);
    layer.save(dir / "layer.safetensors");
    // The reference takes the layer's rounded values exactly.
    reference::LayerParams params;
    for (const auto& [name, t] : read_safetensors(dir / "layer.safetensors"))
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
    Buffer dx(device, hx.size()), dr(device, hr.size());
    device.copy_from_host(dx.data(), hx.data(), hx.size());
    device.copy_from_host(dr.data(), hr.data(), hr.size());
    auto host = [&](const Tensor& t) {
      std::string bytes(t.nbytes(), '\0');
      device.copy_to_host(bytes.data(), t.data(), bytes.size());
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
      layer.forward(dx.view(dt, {s, m}), o);
      BackwardResult g = layer.backward(dr.view(dt, {s, m}), aux_weight);
      want = reference::layer_backward(config, params, wx, wr, s, o, aux_weight);
      // NOTE: fp32 accumulation everywhere; the error is the storage rounding of activations and
      // gradients (2^-24, 2^-11, 2^-8 relative) compounded over three GEMMs; TF32 cuts every
      // expert GEMM's operands to 10 mantissa bits (forward, data and weight gradients).
      const double tol = allow_tf32 ? 1e-2 : dt == DType::kFloat32 ? 1e-4 : dt == DType::kFloat16 ? 2e-2 : 8e-2;
      EXPECT_LT(relative_error(host(g.grad_input), want.input), tol) << "grad_input";
      ASSERT_EQ(want.params.size(), layer.parameter_names().size());
      for (const auto& name : layer.parameter_names())
        EXPECT_LT(relative_error(host(layer.gradient(name)), want.params.at(name)), tol) << name;
    }
    // One SGD step from zero momentum moves each parameter by -lr * gradient (the last backward's).
    SgdOptions sgd;
    sgd.lr = 0.01;
    sgd.momentum = 0.5;
    layer.sgd_step(sgd);
    for (const auto& name : layer.parameter_names()) {
      std::vector<double> moved = params.at(name);
      for (size_t i = 0; i < moved.size(); ++i) moved[i] -= sgd.lr * want.params.at(name)[i];
      EXPECT_LT(relative_error(host(layer.parameter(name)), moved), allow_tf32              ? 1e-4
                                                                    : dt == DType::kFloat32 ? 1e-6
                                                                                            : 1e-2)
          << name << " after one SGD step";
    }
  }
}

namespace {

// x [S, M] drawn normal and rounded to `dt`: the values the layer sees, as doubles.
std::vector<double> rounded_normal(std::mt19937& rng, size_t n, DType dt) {
  std::normal_distribution<double> normal;
  std::vector<double> v(n);
  for (auto& x : v) x = normal(rng);
  return decode_values(encode_values(v, dt), dt);
}

std::vector<double> host_values(Device& device, const Tensor& t) {
  std::string bytes(t.nbytes(), '\0');
  device.copy_to_host(bytes.data(), t.data(), bytes.size());
  return decode_values(bytes, t.dtype());
}

reference::LayerParams host_params(Device& device, const MoeLayer& layer) {
  reference::LayerParams params;
  for (const auto& name : layer.parameter_names()) params[name] = host_values(device, layer.parameter(name));
  return params;
}

}  // namespace

// A tensor's bytes, copied to the host: what bit-exact comparisons compare.
std::string host_bytes(Device& device, const Tensor& t) {
  std::string bytes(t.nbytes(), '\0');
  device.copy_to_host(bytes.data(), t.data(), bytes.size());
  return bytes;
}

// `rows` x M normal values in `dt` on the device.
Buffer normal_input(Device& device, DType dt, int64_t rows, int64_t model_dim, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal;
  std::vector<double> x(static_cast<size_t>(rows * model_dim));
  for (auto& v : x) v = normal(rng);
  const std::string hx = encode_values(x, dt);
  Buffer dx(device, hx.size());
  device.copy_from_host(dx.data(), hx.data(), hx.size());
  return dx;
}

// Writes every parameter of `to` in place through its view from `from`'s (an optimizer outside
// the layer), then tells `to` (parameters_updated).
void write_parameters(Device& device, MoeLayer& to, const MoeLayer& from) {
  for (const auto& name : to.parameter_names()) {
    const Tensor dst = to.parameter(name), src = from.parameter(name);
    device.copy_within(dst.data(), src.data(), dst.nbytes());
  }
  to.parameters_updated();
}

MoeLayerConfig cosine_test_config() {
  MoeLayerConfig c;
  c.model_dim = 8;
  c.hidden_size = 12;
  c.num_experts = 4;
  c.activation = kernels::kActGelu;
  c.gates = {GateConfig{.type = GateType::kCosineTop, .proj_dim = 6}};
  return c;
}

void expect_cosine_forward_matches_reference(Context& context, Device& device, DType dt) {
  SCOPED_TRACE(std::string("cosine forward, ") + dtype_name(dt));
  MoeLayerConfig config = cosine_test_config();
  config.dtype = dt;
  MoeLayer layer(context, device, config);
  layer.init_parameters(3);
  const reference::LayerParams params = host_params(device, layer);
  EXPECT_NEAR(params.at("gates.0.temperature").at(0), std::log(2.0), 1e-2) << "log(1 / init_t)";
  std::mt19937 rng(4);
  const int64_t s = 20, m = config.model_dim;
  const auto x = rounded_normal(rng, s * m, dt);
  const std::string hx = encode_values(x, dt);
  Buffer dx(device, hx.size());
  device.copy_from_host(dx.data(), hx.data(), hx.size());
  for (bool postscore : {true, false}) {
    ForwardOptions o;
    o.top_k = 2;
    o.is_postscore = postscore;
    double want_aux = 0;
    const auto want = reference::layer_forward(config, params, x, s, o, &want_aux);
    const ForwardResult got = layer.forward(dx.view(dt, {s, m}), o);
    const auto y = host_values(device, got.output);
    const double tol = dt == DType::kFloat64 ? 1e-12 : dt == DType::kFloat32 ? 2e-5 : 3e-2;
    EXPECT_NEAR(got.l_aux(), want_aux, dt == DType::kFloat64 ? 1e-12 : 1e-3);
    // NOTE: in 16 bits a token whose top-2 scores nearly tie may route differently: allow two.
    int64_t off = 0;
    for (int64_t t = 0; t < s; ++t) {
      bool bad = false;
      for (int64_t i = 0; i < m; ++i)
        bad |= std::abs(y[t * m + i] - want[t * m + i]) > tol * (1 + std::abs(want[t * m + i]));
      off += bad;
    }
    EXPECT_LE(off, dt == DType::kFloat64 || dt == DType::kFloat32 ? 0 : 2)
        << "tokens off (post-score " << postscore << ")";
  }
}

void expect_cosine_gradients_match_differences(Context& context, Device& device, DType dt,
                                               std::optional<double> temperature) {
  SCOPED_TRACE(std::string("cosine gradients, ") + dtype_name(dt));
  MoeLayerConfig config = cosine_test_config();
  config.dtype = dt;
  MoeLayer layer(context, device, config);
  layer.init_parameters(5);
  if (temperature) {
    const std::string t = encode_values({*temperature}, dt);
    device.copy_from_host(layer.parameter("gates.0.temperature").data(), t.data(), t.size());
  }
  const int64_t s = 12, m = config.model_dim;
  const double aux_weight = 0.1;
  std::mt19937 rng(7);
  const auto x = rounded_normal(rng, s * m, dt), r = rounded_normal(rng, s * m, dt);
  const std::string hx = encode_values(x, dt), hr = encode_values(r, dt);
  Buffer dx(device, hx.size()), dr(device, hr.size());
  device.copy_from_host(dx.data(), hx.data(), hx.size());
  device.copy_from_host(dr.data(), hr.data(), hr.size());
  ForwardOptions o;
  o.top_k = config.num_experts;
  o.capacity_factor = 0;
  o.save_for_backward = true;
  layer.forward(dx.view(dt, {s, m}), o);
  const BackwardResult got = layer.backward(dr.view(dt, {s, m}), aux_weight);
  o.save_for_backward = false;
  reference::LayerParams params = host_params(device, layer);
  auto loss = [&](const std::vector<double>& input) {
    double l_aux = 0;
    const auto y = reference::layer_forward(config, params, input, s, o, &l_aux);
    double total = aux_weight * l_aux;
    for (size_t i = 0; i < y.size(); ++i) total += r[i] * y[i];
    return total;
  };
  const double h = 1e-6, tol = dt == DType::kFloat64 ? 1e-6 : 2e-4;
  auto central = [&](std::vector<double>& values, size_t i, const std::vector<double>& input) {
    const double kept = values[i];
    values[i] = kept + h;
    const double up = loss(input);
    values[i] = kept - h;
    const double down = loss(input);
    values[i] = kept;
    return (up - down) / (2 * h);
  };
  for (const char* name : {"gates.0.cosine_projector.weight", "gates.0.cosine_projector.bias", "gates.0.sim_matrix",
                           "gates.0.temperature"}) {
    const auto grad = host_values(device, layer.gradient(name));
    std::vector<double>& values = params.at(name);
    for (size_t i = 0; i < values.size(); ++i) {
      const double want = central(values, i, x);
      ASSERT_NEAR(grad[i], want, tol * (1 + std::abs(want))) << name << " element " << i;
    }
  }
  if (temperature && *temperature > std::log(100.0)) {
    EXPECT_EQ(host_values(device, layer.gradient("gates.0.temperature")).at(0), 0.0) << "past the clamp";
  }
  const auto grad_x = host_values(device, got.grad_input);
  std::vector<double> xs = x;
  for (size_t i = 0; i < xs.size(); ++i) {
    const double want = central(xs, i, xs);
    ASSERT_NEAR(grad_x[i], want, tol * (1 + std::abs(want))) << "x element " << i;
  }
}

void expect_parameter_writes_reach_forward(Context& context, Device& device, DType dt, bool allow_tf32) {
  testing::TempDir dir;
  MoeLayerConfig config = allow_tf32 ? layer_config(128, 256, 4, dt) : layer_config(64, 128, 4, dt);
  config.allow_tf32 = allow_tf32;
  MoeLayer written(context, device, config), loaded(context, device, config);
  MoeLayer source(context, device, config);
  source.init_parameters(9);  // other weights than the two layers' own draw
  source.save(dir / "source.safetensors");
  loaded.load(dir / "source.safetensors");
  write_parameters(device, written, source);
  const Buffer dx = normal_input(device, dt, 40, config.model_dim, 11);
  auto output = [&](MoeLayer& layer) {
    return host_bytes(device, layer.forward(dx.view(dt, {40, config.model_dim}), ForwardOptions{}).output);
  };
  EXPECT_EQ(output(written), output(loaded)) << "a forward after in-place parameter writes used other weights";
}

void expect_sgd_step_reaches_the_gate_it_used(Context& context, Device& device, DType dt) {
  MoeLayerConfig config = layer_config(64, 128, 4, dt);
  config.gates = {GateConfig{}, GateConfig{}};
  MoeLayer trained(context, device, config), copy(context, device, config);
  trained.init_parameters(21);
  const Buffer dx = normal_input(device, dt, 40, config.model_dim, 23);
  const Tensor input = dx.view(dt, {40, config.model_dim});
  const std::string gate_before = host_bytes(device, trained.parameter("gates.1.wg.weight"));
  ForwardOptions use_second;
  use_second.gate_index = 1;
  use_second.save_for_backward = true;
  trained.forward(input, use_second);
  trained.backward(input, 0.01);  // the input doubles as the output's gradient
  SgdOptions sgd;
  sgd.lr = 0.5;
  trained.sgd_step(sgd);
  ASSERT_NE(host_bytes(device, trained.parameter("gates.1.wg.weight")), gate_before) << "the step did not move gate 1";
  write_parameters(device, copy, trained);
  auto output = [&](MoeLayer& layer, int64_t gate) {
    ForwardOptions o;
    o.gate_index = gate;
    return host_bytes(device, layer.forward(input, o).output);
  };
  for (int64_t gate : {0, 1})
    EXPECT_EQ(output(trained, gate), output(copy, gate))
        << "gate " << gate << ": the trained layer's forward used other weights than its parameters";
}

namespace {

using LayerHandle = std::unique_ptr<sy_layer, decltype(&sy_layer_destroy)>;
using ManagedTensor = std::unique_ptr<DLManagedTensor, void (*)(DLManagedTensor*)>;

ManagedTensor managed(DLManagedTensor* tensor) {
  return ManagedTensor(tensor, [](DLManagedTensor* t) {
    if (t != nullptr && t->deleter != nullptr) t->deleter(t);
  });
}

// The bytes of a DLPack tensor the layer handed out, which must be a contiguous `like` on `device`.
std::string handed_out_bytes(Device& device, const DLManagedTensor* handed, const Tensor& like) {
  EXPECT_NE(handed, nullptr);
  if (handed == nullptr) return {};
  const Tensor t = Tensor::from_dlpack(handed->dl_tensor);
  EXPECT_EQ(t.device(), device.ref()) << "handed out on another device";
  EXPECT_EQ(t.shape(), like.shape());
  EXPECT_EQ(t.dtype(), like.dtype());
  EXPECT_TRUE(t.is_contiguous());
  return host_bytes(device, t);
}

// sy_layer_forward of `x` must fail as a user error whose message names `names`, with no output.
void expect_forward_refused(sy_layer* layer, const DLTensor& x, const std::string& names, const char* what) {
  SCOPED_TRACE(what);
  DLManagedTensor* out = reinterpret_cast<DLManagedTensor*>(&out);  // not null: the call must clear it
  EXPECT_EQ(sy_layer_forward(layer, &x, nullptr, &out, nullptr), SY_ERROR_USER);
  EXPECT_EQ(out, nullptr);
  const std::string message = sy_last_error();
  EXPECT_NE(message.find(names), std::string::npos) << message;
}

// An input like `x` but on another device, of another dtype or strided: each a user error naming
// it, with no output. Host memory stands behind the foreign ones, so nothing would fault if read.
void expect_foreign_inputs_refused(sy_layer* layer, const DLTensor& x, Device& device, DType dt) {
  std::vector<double> host(static_cast<size_t>(x.shape[0] * x.shape[1]));  // as wide as any dtype
  DLTensor other_device = x;
  other_device.data = host.data();
  other_device.device = {device.is_cuda() ? kDLCPU : kDLCUDA, 0};
  const std::string other_name = device.is_cuda() ? "on cpu" : "on cuda:0";
  expect_forward_refused(layer, other_device,
                         other_name + "; the layer is " + std::string(dtype_name(dt)) + " on " + device.name(),
                         "an input on another device");
  DLTensor absent_gpu = other_device;
  absent_gpu.device = {kDLCUDA, 99};
  expect_forward_refused(layer, absent_gpu, "cuda:99", "an input on a GPU the machine lacks");
  DLTensor unsupported = other_device;
  unsupported.device = {kDLROCM, 0};
  expect_forward_refused(layer, unsupported, "DLPack device type", "an input on a device type we lack");
  DLTensor other_dtype = x;
  other_dtype.dtype = dt == DType::kFloat32 ? DLDataType{kDLBfloat, 16, 1} : DLDataType{kDLFloat, 32, 1};
  expect_forward_refused(layer, other_dtype, std::string(dtype_name(dt)), "an input of another dtype");
  DLTensor strided = x;  // the right shape in column-major order
  int64_t column_major[2] = {1, x.shape[0]};
  strided.strides = column_major;
  expect_forward_refused(layer, strided, "expected contiguous", "a strided input");
}

}  // namespace

void expect_dlpack_passes_tensors_without_copies(Device& device, DType dt) {
  constexpr int64_t kTokens = 48;
  // The shapes of the other checks here: their kernels, already compiled, serve this one too.
  const MoeLayerConfig config = layer_config(128, 256, 4, dt);
  MoeLayer direct(Context::global(), device, config);  // seed 1, as sy_layer_create draws
  const std::string json = "{\"model_dim\": 128, \"hidden_size\": 256, \"num_experts\": 4, \"dtype\": \"" +
                           std::string(dtype_name(dt)) + "\"}";
  sy_layer* raw = nullptr;
  ASSERT_EQ(sy_layer_create(device.ref().to_string().c_str(), json.c_str(), &raw), SY_OK) << sy_last_error();
  const LayerHandle through_c(raw, sy_layer_destroy);

  const Buffer x = normal_input(device, dt, kTokens, config.model_dim, 41);
  const Buffer dy = normal_input(device, dt, kTokens, config.model_dim, 43);
  const Tensor x_tensor = x.view(dt, {kTokens, config.model_dim});
  const ManagedTensor x_view = managed(x_tensor.to_dlpack());
  const ManagedTensor dy_view = managed(dy.view(dt, {kTokens, config.model_dim}).to_dlpack());
  const DLTensor& x_dl = x_view->dl_tensor;
  EXPECT_EQ(x_dl.device.device_type, device.is_cuda() ? kDLCUDA : kDLCPU);
  const Tensor x_back = Tensor::from_dlpack(x_dl);
  EXPECT_EQ(x_back.data(), x.data()) << "a DLPack round trip moved the input";
  EXPECT_EQ(x_back.device(), device.ref());
  EXPECT_EQ(x_back.shape(), x_tensor.shape());
  EXPECT_EQ(x_back.dtype(), dt);

  ForwardOptions training;
  training.save_for_backward = true;
  ForwardResult forward = direct.forward(x_tensor, training);
  const std::string want_y = host_bytes(device, forward.output);
  void* const y_memory = forward.output.data();
  const ManagedTensor y_handed = managed(to_dlpack_owning(std::move(forward.storage), forward.output));
  EXPECT_EQ(y_handed->dl_tensor.data, y_memory) << "the output was copied on its way out";
  BackwardOptions backward_options;
  BackwardResult backward = direct.backward(Tensor::from_dlpack(dy_view->dl_tensor), backward_options);
  const std::string want_dx = host_bytes(device, backward.grad_input);

  DLManagedTensor* y = nullptr;
  ASSERT_EQ(sy_layer_forward(through_c.get(), &x_dl, "{\"save_for_backward\": true}", &y, nullptr), SY_OK)
      << sy_last_error();
  const ManagedTensor y_owned = managed(y);
  EXPECT_EQ(handed_out_bytes(device, y, x_tensor), want_y) << "the C API's forward differs from the layer's";
  DLManagedTensor* dx = nullptr;
  ASSERT_EQ(sy_layer_backward(through_c.get(), &dy_view->dl_tensor, 0.0, &dx), SY_OK) << sy_last_error();
  const ManagedTensor dx_owned = managed(dx);
  EXPECT_EQ(handed_out_bytes(device, dx, x_tensor), want_dx) << "the C API's backward differs from the layer's";

  expect_foreign_inputs_refused(through_c.get(), x_dl, device, dt);

  DLManagedTensor* again = nullptr;  // with the same options: a training forward runs its epilogues apart
  ASSERT_EQ(sy_layer_forward(through_c.get(), &x_dl, "{\"save_for_backward\": true}", &again, nullptr), SY_OK)
      << sy_last_error();
  const ManagedTensor again_owned = managed(again);
  EXPECT_EQ(handed_out_bytes(device, again, x_tensor), want_y) << "the refused calls changed the layer";
}

}  // namespace testing
}  // namespace switchyard
