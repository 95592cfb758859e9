// cuBLAS, loaded at run time (the project does not link it): the baseline the GPU benchmarks
// measure against in the same run.
#pragma once

#include <cstdint>

#include "jit/dtype.h"

namespace switchyard::bench {

// cublasGemmStridedBatchedEx's signature, its enums as ints.
using CublasGemm = int (*)(void*, int, int, int, int, int, const void*, const void*, int, int, long long, const void*,
                           int, int, long long, const void*, void*, int, int, long long, int, int, int);

struct Cublas {
  void* handle = nullptr;  // null when libcublas.so.13 cannot be loaded or initialized
  CublasGemm gemm = nullptr;
};

/// libcublas.so.13 from the loader's paths or /usr/local/cuda/lib64, with a handle.
Cublas load_cublas();

/// cudaDataType of a half type (CUDA_R_16F, CUDA_R_16BF), else CUDA_R_32F.
int cublas_type(DType dtype);

constexpr int kCublasCompute32F = 68;          // CUBLAS_COMPUTE_32F
constexpr int kCublasCompute32FFastTf32 = 77;  // CUBLAS_COMPUTE_32F_FAST_TF32: float32 on tensor cores

}  // namespace switchyard::bench
