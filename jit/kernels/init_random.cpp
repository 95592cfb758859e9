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
  f.cpu_dtypes = {DType::kFloat32, DType::kFloat64};
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
  LaunchConfig config;
  if (spec.target.is_cuda()) {
    config.block = 256;
    config.grid = static_cast<unsigned>(std::clamp<int64_t>((count + 255) / 256, 1, int64_t{parallelism} * 8));
  } else {
    config.grid = static_cast<unsigned>(std::clamp<int64_t>(count / 16384, 1, int64_t{parallelism}));
  }
  return config;
}

}  // namespace switchyard::kernels
