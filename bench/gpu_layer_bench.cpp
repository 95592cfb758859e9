// The MoE layer alone on a CUDA device: construction (weights drawn on the device), the first
// forward after it (kernels loaded from the cache), then the median forward and training step
// (forward keeping what backward needs, backward, SGD) of steady-state calls, beside the cuBLAS
// time of the same expert GEMMs measured in the same run (the floor the GEMM share cannot beat)
// and the Tutel figures recorded on an H200 (PyTorch 2.11, Tutel 0.3 from source). JSON on stdout
// at the end, a line per config on stderr as it is measured. Exits 2 without a GPU or cuBLAS.
#include <nlohmann/json.hpp>

#include <chrono>
#include <iostream>
#include <memory>
#include <vector>

#include "bench/cublas.h"
#include "bench/cuda_timing.h"
#include "bench/random_fill.h"
#include "core/error.h"
#include "runtime/cuda_device.h"
#include "runtime/moe_layer.h"

using namespace switchyard;

namespace {

struct LayerCase {
  const char* name;
  DType dtype;
  int64_t tokens, model_dim, hidden, experts;
  ExpertType expert;
  double tutel_forward_ms, tutel_train_ms;  // 0: not recorded
  bool allow_tf32 = false;                  // float32 expert GEMMs in TF32 (helloworld's --use_tensorcore)
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The forward's expert GEMMs through cuBLAS at capacity k * S / E: fc1 (and the SwiGLU gate's
// twin) [E, C, M] x [M, H], fc2 [E, C, H] x [H, M] (in TF32 where the case allows it).
double cublas_floor_seconds(Device& gpu, const bench::Cublas& cublas, const LayerCase& c) {
  const int64_t capacity = 2 * c.tokens / c.experts, e = c.experts, m = c.model_dim, h = c.hidden;
  const size_t el = dtype_size(c.dtype);
  Buffer x(gpu, e * capacity * m * el), w1(gpu, e * m * h * el), hid(gpu, e * capacity * h * el),
      w2(gpu, e * h * m * el), out(gpu, e * capacity * m * el);
  for (Buffer* b : {&x, &w1, &hid, &w2}) bench::fill_random(gpu, b->data(), b->bytes(), c.dtype, 3);
  const float one = 1.0f, zero = 0.0f;
  const int t = bench::cublas_type(c.dtype);
  const int compute = c.allow_tf32 ? bench::kCublasCompute32FFastTf32 : bench::kCublasCompute32F;
  // Row-major C [rows, n] = A [rows, k] B [k, n] is column-major C^T = B^T A^T.
  auto gemm = [&](const Buffer& a, const Buffer& b, Buffer& out_buffer, int64_t k, int64_t n) {
    cublas.gemm(cublas.handle, 0, 0, static_cast<int>(n), static_cast<int>(capacity), static_cast<int>(k), &one,
                b.data(), t, static_cast<int>(n), k * n, a.data(), t, static_cast<int>(k), capacity * k, &zero,
                out_buffer.data(), t, static_cast<int>(n), capacity * n, static_cast<int>(e), compute, -1);
  };
  return bench::median_cuda_seconds(10, [&] {
    gemm(x, w1, hid, m, h);
    if (c.expert == ExpertType::kSwiglu) gemm(x, w1, hid, m, h);
    gemm(hid, w2, out, h, m);
  });
}

nlohmann::json run_case(Context& context, const bench::Cublas& cublas, const LayerCase& c) {
  auto& gpu = dynamic_cast<CudaDevice&>(context.cuda(0));
  MoeLayerConfig config;
  config.model_dim = c.model_dim;
  config.hidden_size = c.hidden;
  config.num_experts = c.experts;
  config.dtype = c.dtype;
  config.expert_type = c.expert;
  config.allow_tf32 = c.allow_tf32;
  gpu.synchronize();
  auto start = std::chrono::steady_clock::now();
  auto layer = std::make_unique<MoeLayer>(context, gpu, config);
  gpu.synchronize();
  const double construct_s = seconds_since(start);
  const size_t bytes = static_cast<size_t>(c.tokens * c.model_dim) * dtype_size(c.dtype);
  Buffer x(gpu, bytes), dy(gpu, bytes);
  bench::fill_random(gpu, x.data(), bytes, c.dtype, 1);
  bench::fill_random(gpu, dy.data(), bytes, c.dtype, 2);
  const Tensor tx = x.view(c.dtype, {c.tokens, c.model_dim}), tdy = dy.view(c.dtype, {c.tokens, c.model_dim});
  gpu.synchronize();
  start = std::chrono::steady_clock::now();
  layer->forward(tx, {});
  gpu.synchronize();
  const double first_forward_s = seconds_since(start);
  const double forward_s = bench::median_cuda_seconds(10, [&] { layer->forward(tx, {}); });
  ForwardOptions train;
  train.save_for_backward = true;
  SgdOptions sgd;
  sgd.lr = 1e-5;
  const double train_s = bench::median_cuda_seconds(5, [&] {
    layer->forward(tx, train);
    layer->backward(tdy, 0.0);
    layer->sgd_step(sgd);
  });
  const double floor_s = cublas_floor_seconds(gpu, cublas, c);
  const CudaDevice::MemoryHighWater memory = gpu.memory_high_water();
  std::cerr << "gpu_layer_bench: " << c.name << ": construct " << construct_s << " s, first forward "
            << first_forward_s * 1e3 << " ms, forward " << forward_s * 1e3 << " ms (cuBLAS GEMMs " << floor_s * 1e3
            << " ms; Tutel " << c.tutel_forward_ms << "), train " << train_s * 1e3 << " ms (Tutel " << c.tutel_train_ms
            << ")" << std::endl;
  return {{"name", c.name},
          {"dtype", dtype_name(c.dtype)},
          {"construct_s", construct_s},
          {"first_forward_ms", first_forward_s * 1e3},
          {"forward_ms", forward_s * 1e3},
          {"train_ms", train_s * 1e3},
          {"cublas_gemms_ms", floor_s * 1e3},
          {"tutel_forward_ms", c.tutel_forward_ms},
          {"tutel_train_ms", c.tutel_train_ms},
          {"memory_high_water_mib", static_cast<double>(memory.used) / (1 << 20)}};
}

}  // namespace

int main() {
  if (!Context::cuda_unavailable_reason().empty()) {
    std::cerr << "gpu_layer_bench: " << Context::cuda_unavailable_reason() << "\n";
    return 2;
  }
  const bench::Cublas cublas = bench::load_cublas();
  if (cublas.handle == nullptr) {
    std::cerr << "gpu_layer_bench: cuBLAS (libcublas.so.13) not available\n";
    return 2;
  }
  // The GPU layer issue's table: Tutel's figures on the same H200 (0: not recorded there).
  const std::vector<LayerCase> cases = {
      {"helloworld fp32", DType::kFloat32, 8192, 2048, 2048, 2, ExpertType::kFfn, 7.47, 17.1},
      {"helloworld fp32 tf32", DType::kFloat32, 8192, 2048, 2048, 2, ExpertType::kFfn, 0, 0, true},
      {"helloworld bf16", DType::kBFloat16, 8192, 2048, 2048, 2, ExpertType::kFfn, 2.24, 4.30},
      {"mixtral ffn bf16", DType::kBFloat16, 8192, 4096, 14336, 8, ExpertType::kFfn, 8.41, 0},
      {"mixtral swiglu bf16", DType::kBFloat16, 8192, 4096, 14336, 8, ExpertType::kSwiglu, 0, 0},
      {"small batch S=256 mixtral ffn bf16", DType::kBFloat16, 256, 4096, 14336, 8, ExpertType::kFfn, 0, 0}};
  try {
    Context& context = Context::global();
    nlohmann::json results = nlohmann::json::array();
    for (const LayerCase& c : cases) results.push_back(run_case(context, cublas, c));
    std::cout << nlohmann::json{{"device", context.cuda(0).name()}, {"results", results}}.dump(2) << "\n";
    return 0;
  } catch (const Error& e) {
    std::cerr << "gpu_layer_bench: " << e.what() << "\n";
    return 1;
  }
}
