// Expert GEMM TFLOP/s on a CUDA device against cuBLAS (loaded at run time) on the same shapes
// and dtypes, measured in the same run on random data. JSON on stdout at the end, and a line per
// case on stderr as it is measured (a run cut short still shows its figures). Exits 2 without a
// GPU or cuBLAS.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <iostream>
#include <numeric>
#include <regex>
#include <tuple>
#include <vector>

#include "bench/cublas.h"
#include "bench/cuda_timing.h"
#include "bench/random_fill.h"
#include "core/error.h"
#include "jit/kernels/gemm.h"
#include "runtime/gemm_ops.h"

using namespace switchyard;
using bench::Cublas;

namespace {

enum class Form { kForward, kDataGradient, kWeightGradient };

// What the chosen kernel costs a multiprocessor: registers per thread (ptxas), dynamic shared
// memory per block, and how many blocks fit at once by those two.
nlohmann::json kernel_resources(Context& context, const KernelSpec& spec, const LaunchConfig& launch) {
  const std::string& log = context.store().obtain(spec).binary.log;
  std::smatch match;
  const int registers = std::regex_search(log, match, std::regex(R"(Used (\d+) registers)")) ? std::stoi(match[1]) : 0;
  const int threads = static_cast<int>(launch.block);
  int blocks = registers > 0 ? 65536 / (registers * threads) : 0;
  if (launch.shared_bytes > 0) blocks = std::min(blocks, static_cast<int>(233472 / (launch.shared_bytes + 1024)));
  return {{"registers", registers},
          {"threads", threads},
          {"shared_bytes", launch.shared_bytes},
          {"blocks_per_sm", std::min(blocks, 2048 / threads)}};
}

// cuBLAS's time for the same batched GEMM (median of 20 runs). Row-major C = A op(W) is
// column-major C^T = op(W)^T A^T: cuBLAS m = n, n = rows. The weight gradient C^T [n, k] = B^T A:
// m = n, n = k, reducing over the rows (A transposed).
double time_cublas(const Cublas& cublas, DType dt, Form form, bool tf32, int64_t batch, int64_t rows, int64_t k,
                   int64_t n, const void* a, const void* w, void* c) {
  const float one = 1.0f, zero = 0.0f;
  const int ct = bench::cublas_type(dt);
  const int compute = tf32 ? bench::kCublasCompute32FFastTf32 : bench::kCublasCompute32F;
  const bool trans_b = form == Form::kDataGradient;
  return bench::median_cuda_seconds(20, [&] {
    if (form == Form::kWeightGradient) {
      cublas.gemm(cublas.handle, 0, 1, static_cast<int>(n), static_cast<int>(k), static_cast<int>(rows), &one, w, ct,
                  static_cast<int>(n), rows * n, a, ct, static_cast<int>(k), rows * k, &zero, c, ct,
                  static_cast<int>(n), k * n, static_cast<int>(batch), compute, -1);
      return;
    }
    cublas.gemm(cublas.handle, trans_b ? 1 : 0, 0, static_cast<int>(n), static_cast<int>(rows), static_cast<int>(k),
                &one, w, ct, static_cast<int>(trans_b ? k : n), k * n, a, ct, static_cast<int>(k), rows * k, &zero, c,
                ct, static_cast<int>(n), rows * n, static_cast<int>(batch), compute, -1);
  });
}

// kForward: C [batch, rows, n] = A [batch, rows, k] W, W [batch, k, n]. kDataGradient: the same
// with W^T (W [batch, n, k]). kWeightGradient: C [batch, k, n] = A^T B, B [batch, rows, n],
// reducing over the rows. `tf32`: float32 on tensor cores (allow_tf32), against cuBLAS's TF32.
nlohmann::json run_case(Context& context, const Cublas& cublas, const char* name, DType dt, int64_t batch, int64_t rows,
                        int64_t k, int64_t n, Form form = Form::kForward, bool tf32 = false) {
  Device& gpu = context.cuda(0);
  const size_t el = dtype_size(dt);
  const bool trans_a = form == Form::kWeightGradient, trans_b = form == Form::kDataGradient;
  const int64_t c_rows = trans_a ? k : rows, w_rows = trans_a ? rows : k;
  Buffer a(gpu, batch * rows * k * el), w(gpu, batch * w_rows * n * el), c(gpu, batch * c_rows * n * el);
  bench::fill_random(gpu, a.data(), a.bytes(), dt, 1);
  bench::fill_random(gpu, w.data(), w.bytes(), dt, 2);
  Tensor ta = a.view(dt, {batch, rows, k}), tc = c.view(dt, {batch, c_rows, n});
  Tensor tw = trans_b ? w.view(dt, {batch, n, k}) : w.view(dt, {batch, w_rows, n});
  GemmOptions options;
  options.trans_a = trans_a;
  options.trans_b = trans_b;
  options.allow_tf32 = tf32;
  const KernelSpec spec = kernels::gemm_spec(
      {.dtype = dt, .n = n, .k = k, .trans_b = trans_b, .allow_tf32 = tf32, .trans_a = trans_a}, gpu.target());
  const LaunchConfig launch = kernels::gemm_launch_config(
      spec, {.batch = batch, .rows = rows, .max_rows = rows, .k = k, .n = n, .parallelism = gpu.parallelism()});
  double ours = bench::median_cuda_seconds(20, [&] { batched_gemm(context, ta, tw, tc, options); });
  double theirs = time_cublas(cublas, dt, form, tf32, batch, rows, k, n, a.data(), w.data(), c.data());
  double flops = 2.0 * batch * rows * k * n;
  const nlohmann::json resources = kernel_resources(context, spec, launch);
  const std::string type = std::string(dtype_name(dt)) + (tf32 ? " tf32" : "");
  std::cerr << "gpu_gemm_bench: " << name << " " << type << " " << flops / ours / 1e12 << " TFLOP/s, cuBLAS "
            << flops / theirs / 1e12 << " (" << theirs / ours << "x) [" << spec.family << ", " << resources["registers"]
            << " registers, " << resources["shared_bytes"] << " B shared, " << resources["blocks_per_sm"]
            << " block(s)/SM]" << std::endl;
  return {{"name", name},
          {"dtype", type},
          {"kernel", spec.family},
          {"resources", resources},
          {"switchyard_tflops", flops / ours / 1e12},
          {"cublas_tflops", flops / theirs / 1e12},
          {"vs_cublas", theirs / ours}};
}

// A grouped (dropless) forward with uneven counts on the device: C [e, capacity, n] = A W over each
// expert's count of rows. Its useful work (2 x sum(counts) x k x n) per second against cuBLAS's
// padded equivalent: the batched GEMM over the largest count for every expert.
nlohmann::json run_grouped_case(Context& context, const Cublas& cublas, const char* name, DType dt,
                                const std::vector<int>& counts, int64_t k, int64_t n) {
  Device& gpu = context.cuda(0);
  const size_t el = dtype_size(dt);
  const auto batch = static_cast<int64_t>(counts.size());
  const int64_t rows = *std::max_element(counts.begin(), counts.end());
  Buffer a(gpu, batch * rows * k * el), w(gpu, batch * k * n * el), c(gpu, batch * rows * n * el),
      device_counts(gpu, counts.size() * sizeof(int));
  bench::fill_random(gpu, a.data(), a.bytes(), dt, 1);
  bench::fill_random(gpu, w.data(), w.bytes(), dt, 2);
  gpu.copy_from_host(device_counts.data(), counts.data(), device_counts.bytes());
  const Tensor tcounts = device_counts.view(DType::kInt32, {batch});
  GemmOptions options;
  options.row_counts = &tcounts;
  const Tensor ta = a.view(dt, {batch, rows, k}), tw = w.view(dt, {batch, k, n}), tc = c.view(dt, {batch, rows, n});
  const double ours = bench::median_cuda_seconds(20, [&] { batched_gemm(context, ta, tw, tc, options); });
  const double theirs = time_cublas(cublas, dt, Form::kForward, false, batch, rows, k, n, a.data(), w.data(), c.data());
  const double useful = 2.0 * std::accumulate(counts.begin(), counts.end(), 0.0) * k * n;
  const KernelSpec spec = kernels::gemm_spec({.dtype = dt, .n = n, .k = k, .grouped = true}, gpu.target());
  std::cerr << "gpu_gemm_bench: " << name << " " << dtype_name(dt) << " " << useful / ours / 1e12
            << " useful TFLOP/s, cuBLAS padded " << useful / theirs / 1e12 << " (" << theirs / ours << "x) ["
            << spec.family << "]" << std::endl;
  return {{"name", name},
          {"dtype", dtype_name(dt)},
          {"kernel", spec.family},
          {"switchyard_tflops", useful / ours / 1e12},
          {"cublas_tflops", useful / theirs / 1e12},
          {"vs_cublas", theirs / ours}};
}

}  // namespace

int main() {
  if (!Context::cuda_unavailable_reason().empty()) {
    std::cerr << "gpu_gemm_bench: " << Context::cuda_unavailable_reason() << "\n";
    return 2;
  }
  Cublas cublas = bench::load_cublas();
  if (cublas.handle == nullptr) {
    std::cerr << "gpu_gemm_bench: cuBLAS (libcublas.so.13) not available\n";
    return 2;
  }
  try {
    Context& context = Context::global();
    nlohmann::json results = nlohmann::json::array();
    for (DType dt : {DType::kBFloat16, DType::kFloat16, DType::kFloat32}) {
      results.push_back(run_case(context, cublas, "tiny fc1", dt, 4, 1024, 64, 128));
      results.push_back(run_case(context, cublas, "mid fc1", dt, 8, 1024, 1024, 4096));
      results.push_back(run_case(context, cublas, "mid fc2", dt, 8, 1024, 4096, 1024));
      results.push_back(run_case(context, cublas, "mixtral fc1", dt, 8, 2048, 4096, 14336));
      // fc1 as the layer reads it: stored [n, k] (nn.Linear's [out, in]), B K-major
      results.push_back(
          run_case(context, cublas, "mixtral fc1 W [n, k]", dt, 8, 2048, 4096, 14336, Form::kDataGradient));
      results.push_back(run_case(context, cublas, "mixtral fc1 dgrad", dt, 8, 2048, 14336, 4096, Form::kDataGradient));
      results.push_back(
          run_case(context, cublas, "mixtral fc2 wgrad", dt, 8, 2048, 14336, 4096, Form::kWeightGradient));
    }
    // Dropless Mixtral fc1 over a skewed router's counts (16384 routed rows, 30% to the busiest
    // expert, 4% to the idlest).
    const std::vector<int> skewed{4915, 3277, 2294, 1802, 1475, 1147, 819, 655};
    for (DType dt : {DType::kBFloat16, DType::kFloat16})
      results.push_back(run_grouped_case(context, cublas, "mixtral fc1 grouped skewed", dt, skewed, 4096, 14336));
    // float32 layers that allow TF32: W [k, n] (mma.sync's TF32), and W [n, k] as fc1 is stored,
    // the K-major form that wgmma's TF32 takes on Hopper; and the weight gradient, whose operands
    // batched_gemm transposes first on Hopper (the time includes those transposes).
    for (const auto& [name, rows, k, n] :
         {std::tuple{"mid fc1", 1024, 1024, 4096}, std::tuple{"mixtral fc1", 2048, 4096, 14336}}) {
      results.push_back(run_case(context, cublas, name, DType::kFloat32, 8, rows, k, n, Form::kForward, true));
      const std::string stored = std::string(name) + " W [n, k]";
      results.push_back(
          run_case(context, cublas, stored.c_str(), DType::kFloat32, 8, rows, k, n, Form::kDataGradient, true));
    }
    results.push_back(run_case(context, cublas, "mixtral fc2 wgrad", DType::kFloat32, 8, 2048, 14336, 4096,
                               Form::kWeightGradient, true));
    std::cout << nlohmann::json{{"device", context.cuda(0).name()}, {"results", results}}.dump(2) << "\n";
    return 0;
  } catch (const Error& e) {
    std::cerr << "gpu_gemm_bench: " << e.what() << "\n";
    return 1;
  }
}
