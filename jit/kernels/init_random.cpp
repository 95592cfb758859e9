#include "jit/kernels/init_random.h"

#include <algorithm>

#include "core/hash.h"

namespace switchyard::kernels {

KernelFamily init_random_family() {
  KernelFamily f;
  f.name = "init_random";
  f.params = {{"dtype", ParamDecl::Kind::kDType}};
  f.cpu_header = "switchyard/cpu/init_random.hpp";
  f.cpu_function = "switchyard::cpu::init_random";
  f.cuda_header = "switchyard/cuda/init_random.cuh";
  f.cuda_function = "switchyard::cuda::init_random";
  f.args_type = "switchyard::kernels::InitArgs";
  f.cpu_dtypes = {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16};
  f.cuda_dtypes = {DType::kFloat32, DType::kFloat16, DType::kBFloat16};
  return f;
}

KernelSpec init_random_spec(DType dtype, const Target& target) {
  return {"init_random", {{"dtype", dtype}}, target};
}

unsigned long long init_seed(unsigned long long seed, std::string_view name) {
  return init_mix(seed ^ init_mix(hash64(name)));
}

LaunchConfig init_random_launch_config(const KernelSpec& spec, int64_t count, unsigned parallelism) {
  if (!spec.target.is_cuda()) return cpu_blocks(count, 16384, parallelism);
  LaunchConfig config = thread_per_item(count, 256);  // striding, so at most 8 blocks per multiprocessor
  config.grid = std::clamp(config.grid, 1u, parallelism * 8);
  return config;
}

}  // namespace switchyard::kernels
