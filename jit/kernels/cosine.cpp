#include "jit/kernels/cosine.h"

namespace switchyard::kernels {

namespace {
constexpr unsigned kCudaThreads = 256;  // cuda/cosine.cuh's kCosineThreads
}

KernelFamily cosine_family() {
  KernelFamily f;
  f.name = "cosine";
  f.params = {{"dtype", ParamDecl::Kind::kDType}, {"op", ParamDecl::Kind::kInt, kCosNormalize, kCosScaleBackward}};
  f.cpu_header = "switchyard/cpu/cosine.hpp";
  f.cpu_function = "switchyard::cpu::cosine";
  f.cuda_header = "switchyard/cuda/cosine.cuh";
  f.cuda_function = "switchyard::cuda::cosine";
  f.args_type = "switchyard::kernels::CosineArgs";
  f.cpu_dtypes = {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16};
  f.cuda_dtypes = {DType::kFloat32, DType::kFloat16, DType::kBFloat16};
  return f;
}

KernelSpec cosine_spec(DType dtype, CosineOp op, const Target& target) {
  return {"cosine", {{"dtype", dtype}, {"op", static_cast<int64_t>(op)}}, target};
}

LaunchConfig cosine_launch_config(const KernelSpec& spec, int64_t items, unsigned parallelism) {
  const bool one_block = spec.int_param("op") == kCosScaleBackward;
  if (spec.target.is_cuda()) return one_block ? LaunchConfig{1, kCudaThreads, 0} : thread_per_item(items, kCudaThreads);
  return one_block ? LaunchConfig{1, 1, 0} : cpu_blocks(items, 64, parallelism);
}

}  // namespace switchyard::kernels
