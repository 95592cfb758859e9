#include "jit/kernels/elementwise.h"

#include <algorithm>

#include "core/error.h"

namespace switchyard::kernels {

KernelFamily elementwise_family() {
  KernelFamily f;
  f.name = "elementwise";
  f.params = {{"dtype", ParamDecl::Kind::kDType},
              {"op", ParamDecl::Kind::kInt, kEwActivate, kEwTranspose},
              {"activation", ParamDecl::Kind::kInt, kActNone, kActSilu}};
  f.cpu_header = "switchyard/cpu/elementwise.hpp";
  f.cpu_function = "switchyard::cpu::elementwise";
  f.cuda_header = "switchyard/cuda/elementwise.cuh";
  f.cuda_function = "switchyard::cuda::elementwise";
  f.args_type = "switchyard::kernels::ElementwiseArgs";
  f.cpu_dtypes = {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16};
  f.cuda_dtypes = {DType::kFloat32, DType::kFloat16, DType::kBFloat16};
  f.check = [](const KernelSpec& spec) {
    const bool activate = spec.int_param("op") == kEwActivate;
    const int64_t act = spec.int_param("activation");
    SY_CHECK(activate ? act != kActNone : act == kActNone)
        << "kernel spec " << spec.to_string() << ": op 0 (activate) takes relu, gelu or silu; other ops take none";
  };
  return f;
}

KernelSpec elementwise_spec(DType dtype, ElementwiseOp op, GemmActivation activation, const Target& target) {
  return {"elementwise",
          {{"dtype", dtype},
           {"op", static_cast<int64_t>(op)},
           {"activation", static_cast<int64_t>(op == kEwActivate ? activation : kActNone)}},
          target};
}

LaunchConfig elementwise_launch_config(const KernelSpec& spec, long count, long work, unsigned parallelism) {
  if (spec.target.is_cuda()) return thread_per_item(count, 256);
  // Blocks split the output; `work` (elements read) sizes the split when it exceeds the output.
  return cpu_blocks(std::min(std::max(work, count) / 8192, count), 1, parallelism);
}

LaunchConfig transpose_launch_config(const KernelSpec& spec, long batch, long rows, long cols, long padded_rows,
                                     unsigned parallelism) {
  SY_INTERNAL_CHECK(spec.int_param("op") == kEwTranspose) << spec.to_string() << " is not a transpose";
  if (spec.target.is_cuda()) {
    auto tiles = [](long extent) { return (extent + kTransposeTile - 1) / kTransposeTile; };
    return {static_cast<unsigned>(batch * tiles(cols) * tiles(padded_rows)), kTransposeTile * kTransposeTile, 0};
  }
  // Output rows (batch * cols of them) split among the blocks, sized by the elements moved.
  const long out_rows = batch * cols;
  return cpu_blocks(std::min(out_rows * std::max(rows, padded_rows) / 8192, out_rows), 1, parallelism);
}
}  // namespace switchyard::kernels
