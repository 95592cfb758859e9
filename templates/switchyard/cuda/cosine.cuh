// The cosine gate's kernels on CUDA (see common/cosine_args.h), math in fp32: a thread per vector
// (normalize: the gate's vectors are short, S of proj_dim and E of proj_dim), a thread per element
// (scale), one block of kCosineThreads for the scale backward's sum.
#pragma once

#include <switchyard/common/cosine_args.h>
#include <switchyard/cuda/types.cuh>

namespace switchyard {
namespace cuda {

constexpr int kCosineThreads = 256;

template <typename T>
__device__ __forceinline__ float cosine_scale_of(const kernels::CosineArgs& args) {
  return __expf(fminf(to_float(*static_cast<const T*>(args.t)), static_cast<float>(kernels::kCosineMaxLogScale)));
}

template <typename T, int kOp>
__global__ void __launch_bounds__(kCosineThreads) cosine(kernels::CosineArgs args) {
  static_assert(kOp >= kernels::kCosNormalize && kOp <= kernels::kCosScaleBackward, "cosine: unknown op");
  const T* x = static_cast<const T*>(args.x);
  const T* dy = static_cast<const T*>(args.dy);
  T* out = static_cast<T*>(args.out);
  float* norms = static_cast<float*>(args.norms);
  const long vs = args.vector_stride, es = args.element_stride;
  const long v = static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (kOp == kernels::kCosNormalize) {
    if (v >= args.vectors) return;
    float sum = 0.0f;
    for (long i = 0; i < args.length; ++i) sum += to_float(x[v * vs + i * es]) * to_float(x[v * vs + i * es]);
    const float norm = sqrtf(sum), denom = fmaxf(norm, static_cast<float>(kernels::kCosineEps));
    norms[v] = norm;
    for (long i = 0; i < args.length; ++i) out[v * vs + i * es] = from_float<T>(to_float(x[v * vs + i * es]) / denom);
  } else if (kOp == kernels::kCosNormalizeBackward) {
    if (v >= args.vectors) return;
    const bool clamped = !(norms[v] > static_cast<float>(kernels::kCosineEps));
    float dot = 0.0f;
    for (long i = 0; i < args.length; ++i) dot += to_float(x[v * vs + i * es]) * to_float(dy[v * vs + i * es]);
    if (clamped) dot = 0.0f;
    const float denom = clamped ? static_cast<float>(kernels::kCosineEps) : norms[v];
    for (long i = 0; i < args.length; ++i) {
      const long at = v * vs + i * es;
      out[at] = from_float<T>((to_float(dy[at]) - to_float(x[at]) * dot) / denom);
    }
  } else if (kOp == kernels::kCosScale) {
    if (v < args.vectors) out[v] = from_float<T>(to_float(x[v]) * cosine_scale_of<T>(args));
  } else {  // one block: a strided partial sum per thread, a tree in shared memory, then du
    __shared__ float partial[kCosineThreads];
    const float scale = cosine_scale_of<T>(args);
    float sum = 0.0f;
    for (long i = threadIdx.x; i < args.vectors; i += blockDim.x) sum += to_float(dy[i]) * to_float(x[i]);
    partial[threadIdx.x] = sum;
    __syncthreads();
    for (int half = kCosineThreads / 2; half > 0; half /= 2) {
      if (static_cast<int>(threadIdx.x) < half) partial[threadIdx.x] += partial[threadIdx.x + half];
      __syncthreads();
    }
    if (threadIdx.x == 0) {
      const float t = to_float(*static_cast<const T*>(args.t));
      *static_cast<T*>(args.grad_t) =
          from_float<T>(t <= static_cast<float>(kernels::kCosineMaxLogScale) ? partial[0] * scale : 0.0f);
    }
    for (long i = threadIdx.x; i < args.vectors; i += blockDim.x) out[i] = from_float<T>(to_float(dy[i]) * scale);
  }
}

}  // namespace cuda
}  // namespace switchyard
