// Expert GEMM TFLOP/s on a CUDA device against cuBLAS (loaded at run time) on the same shapes
// and dtypes, measured in the same run on random data. JSON on stdout at the end, and a line per
// case on stderr as it is measured (a run cut short still shows its figures). Exits 2 without a
// GPU or cuBLAS.
#include <dlfcn.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <iostream>

#include "bench/random_fill.h"
#include "core/error.h"
#include "jit/kernels/gemm.h"
#include "runtime/cuda_driver.h"
#include "runtime/gemm_ops.h"

using namespace switchyard;

namespace {

using CublasGemm = int (*)(void*, int, int, int, int, int, const void*, const void*, int, int, long long, const void*,
                           int, int, long long, const void*, void*, int, int, long long, int, int, int);
struct Cublas {
  void* handle = nullptr;
  CublasGemm gemm = nullptr;
};

Cublas load_cublas() {
  Cublas c;
  void* lib = dlopen("libcublas.so.13", RTLD_NOW);
  if (lib == nullptr) lib = dlopen("/usr/local/cuda/lib64/libcublas.so.13", RTLD_NOW);
  if (lib == nullptr) return c;
  auto create = reinterpret_cast<int (*)(void**)>(dlsym(lib, "cublasCreate_v2"));
  c.gemm = reinterpret_cast<CublasGemm>(dlsym(lib, "cublasGemmStridedBatchedEx"));
  if (create == nullptr || c.gemm == nullptr || create(&c.handle) != 0) c.handle = nullptr;
  return c;
}

int cuda_type(DType d) {
  return d == DType::kFloat16 ? 2 : d == DType::kBFloat16 ? 14 : 0;
}

template <typename F>
double seconds_per_call(F body) {
  const CudaDriver& driver = CudaDriver::get();
  body();
  driver.cuCtxSynchronize();
  const int iterations = 20;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < iterations; ++i) body();
  driver.cuCtxSynchronize();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / iterations;
}

// C [batch, rows, n] = A [batch, rows, k] W, W [batch, k, n], or W^T with trans_b (W [batch, n, k]:
// the data-gradient form).
nlohmann::json run_case(Context& context, const Cublas& cublas, const char* name, DType dt, int64_t batch, int64_t rows,
                        int64_t k, int64_t n, bool trans_b = false) {
  Device& gpu = context.cuda(0);
  const size_t el = dtype_size(dt);
  Buffer a(gpu, batch * rows * k * el), w(gpu, batch * k * n * el), c(gpu, batch * rows * n * el);
  bench::fill_random(gpu, a.data(), a.bytes(), dt, 1);
  bench::fill_random(gpu, w.data(), w.bytes(), dt, 2);
  Tensor ta = a.view(dt, {batch, rows, k}), tc = c.view(dt, {batch, rows, n});
  Tensor tw = trans_b ? w.view(dt, {batch, n, k}) : w.view(dt, {batch, k, n});
  GemmOptions options;
  options.trans_b = trans_b;
  const std::string family = kernels::gemm_spec({.dtype = dt, .n = n, .k = k, .trans_b = trans_b}, gpu.target()).family;
  double ours = seconds_per_call([&] { batched_gemm(context, ta, tw, tc, options); });
  const float one = 1.0f, zero = 0.0f;
  // Row-major C = A W is column-major C^T = W^T A^T: cuBLAS m = n, n = rows.
  double theirs = seconds_per_call([&] {
    cublas.gemm(cublas.handle, trans_b ? 1 : 0, 0, static_cast<int>(n), static_cast<int>(rows), static_cast<int>(k),
                &one, w.data(), cuda_type(dt), static_cast<int>(trans_b ? k : n), k * n, a.data(), cuda_type(dt),
                static_cast<int>(k), rows * k, &zero, c.data(), cuda_type(dt), static_cast<int>(n), rows * n,
                static_cast<int>(batch), 68 /*COMPUTE_32F*/, -1);
  });
  double flops = 2.0 * batch * rows * k * n;
  std::cerr << "gpu_gemm_bench: " << name << " " << dtype_name(dt) << " " << flops / ours / 1e12 << " TFLOP/s, cuBLAS "
            << flops / theirs / 1e12 << " (" << theirs / ours << "x) [" << family << "]" << std::endl;
  return {{"name", name},
          {"dtype", dtype_name(dt)},
          {"kernel", family},
          {"switchyard_tflops", flops / ours / 1e12},
          {"cublas_tflops", flops / theirs / 1e12},
          {"vs_cublas", theirs / ours}};
}

}  // namespace

int main() {
  if (!Context::cuda_unavailable_reason().empty()) {
    std::cerr << "gpu_gemm_bench: " << Context::cuda_unavailable_reason() << "\n";
    return 2;
  }
  Cublas cublas = load_cublas();
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
      results.push_back(run_case(context, cublas, "mixtral fc1 dgrad", dt, 8, 2048, 14336, 4096, true));
    }
    std::cout << nlohmann::json{{"device", context.cuda(0).name()}, {"results", results}}.dump(2) << "\n";
    return 0;
  } catch (const Error& e) {
    std::cerr << "gpu_gemm_bench: " << e.what() << "\n";
    return 1;
  }
}
