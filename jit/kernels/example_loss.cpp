#include "jit/kernels/example_loss.h"

#include <algorithm>

#include "core/error.h"

namespace switchyard::kernels {

KernelFamily example_loss_family() {
  KernelFamily f;
  f.name = "example_loss";
  f.params = {{"dtype", ParamDecl::Kind::kDType}, {"op", ParamDecl::Kind::kInt, kLossLogits, kLossGrad}};
  f.cpu_header = "switchyard/cpu/example_loss.hpp";
  f.cpu_function = "switchyard::cpu::example_loss";
  f.cuda_header = "switchyard/cuda/example_loss.cuh";
  f.cuda_function = "switchyard::cuda::example_loss";
  f.args_type = "switchyard::kernels::ExampleLossArgs";
  f.cpu_dtypes = {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16};
  f.cuda_dtypes = {DType::kFloat32, DType::kFloat16, DType::kBFloat16};
  return f;
}

KernelSpec example_loss_spec(DType dtype, ExampleLossOp op, const Target& target) {
  return {"example_loss", {{"dtype", dtype}, {"op", static_cast<int64_t>(op)}}, target};
}

LaunchConfig example_loss_launch_config(const KernelSpec& spec, const ExampleLossProblem& p) {
  const int64_t op = spec.int_param("op"), rows = p.batch * p.tokens, elements = rows * p.model_dim;
  LaunchConfig config;
  if (spec.target.is_cuda()) {
    config.block = kLossThreads;
    config.grid = static_cast<unsigned>(op == kLossLogits    ? (rows + kLossRowsPerBlock - 1) / kLossRowsPerBlock
                                        : op == kLossSoftmax ? p.batch
                                                             : (elements + kLossThreads - 1) / kLossThreads);
    return config;
  }
  const int64_t units = op == kLossLogits ? rows : op == kLossSoftmax ? p.batch : (elements + 4095) / 4096;
  config.grid = static_cast<unsigned>(std::clamp<int64_t>(units, 1, p.parallelism));
  return config;
}

}  // namespace switchyard::kernels
