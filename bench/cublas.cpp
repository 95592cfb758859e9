#include "bench/cublas.h"

#include <dlfcn.h>

namespace switchyard::bench {

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

int cublas_type(DType dtype) {
  return dtype == DType::kFloat16 ? 2 : dtype == DType::kBFloat16 ? 14 : 0;
}

}  // namespace switchyard::bench
