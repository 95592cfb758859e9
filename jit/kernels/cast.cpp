#include "jit/kernels/cast.h"

#include "core/error.h"

namespace switchyard::kernels {

KernelFamily cast_family() {
  KernelFamily f;
  f.name = "cast";
  f.params = {{"dtype", ParamDecl::Kind::kDType}, {"to", ParamDecl::Kind::kDType}};
  f.cpu_header = "switchyard/cpu/cast.hpp";
  f.cpu_function = "switchyard::cpu::cast";
  f.cuda_header = "switchyard/cuda/cast.cuh";
  f.cuda_function = "switchyard::cuda::cast";
  f.args_type = "switchyard::kernels::CastArgs";
  f.cpu_dtypes = {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16};
  f.cuda_dtypes = {DType::kFloat32, DType::kFloat16, DType::kBFloat16};
  f.check = [](const KernelSpec& spec) {
    SY_CHECK(spec.dtype_param("dtype") != spec.dtype_param("to"))
        << "kernel spec " << spec.to_string() << ": a cast needs two different dtypes";
  };
  return f;
}

KernelSpec cast_spec(DType from, DType to, const Target& target) {
  return {"cast", {{"dtype", from}, {"to", to}}, target};
}

LaunchConfig cast_launch_config(const KernelSpec& spec, int64_t count, unsigned parallelism) {
  return spec.target.is_cuda() ? thread_per_item(count, 256) : cpu_blocks(count, 4096, parallelism);
}
}  // namespace switchyard::kernels
