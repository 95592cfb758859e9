#include "jit/kernels/gating.h"

#include <vector>

#include "core/error.h"

namespace switchyard::kernels {
namespace {

KernelFamily base(const std::string& name, bool with_normalize) {
  KernelFamily f;
  f.name = name;
  f.params = {{"dtype", ParamDecl::Kind::kDType},
              {"experts", ParamDecl::Kind::kInt, 1, 4096},
              {"top_k", ParamDecl::Kind::kInt, 1, 4096}};
  if (with_normalize) f.params.push_back({"normalize", ParamDecl::Kind::kBool});
  f.cpu_header = "switchyard/cpu/gating.hpp";
  f.cpu_function = "switchyard::cpu::" + name;
  f.args_type = name == "gate_backward" ? "switchyard::kernels::GateBackwardArgs"
                : with_normalize        ? "switchyard::kernels::GateTopkArgs"
                                        : "switchyard::kernels::LocationsArgs";
  f.cpu_dtypes = with_normalize
                     ? std::vector<DType>{DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16}
                     : std::vector<DType>{DType::kFloat32, DType::kFloat64};
  f.cuda_header = "switchyard/cuda/gating.cuh";
  f.cuda_function = "switchyard::cuda::" + name;
  // gate_topk reads logits of any storage type; route_locations reads the fp32 scores.
  f.cuda_dtypes = with_normalize ? std::vector<DType>{DType::kFloat32, DType::kFloat16, DType::kBFloat16}
                                 : std::vector<DType>{DType::kFloat32};
  f.check = [](const KernelSpec& spec) {
    SY_CHECK(spec.int_param("top_k") <= spec.int_param("experts"))
        << "kernel spec " << spec.to_string() << ": top_k exceeds the number of experts";
  };
  return f;
}

}  // namespace

KernelFamily gate_topk_family() {
  return base("gate_topk", true);
}
KernelFamily route_locations_family() {
  return base("route_locations", false);
}

KernelFamily route_priority_family() {
  KernelFamily f;
  f.name = "route_priority";
  f.params = {{"dtype", ParamDecl::Kind::kDType}};
  f.cpu_header = "switchyard/cpu/gating.hpp";
  f.cpu_function = "switchyard::cpu::route_priority";
  f.args_type = "switchyard::kernels::PriorityArgs";
  f.cpu_dtypes = {DType::kFloat32, DType::kFloat64};
  f.cuda_header = "switchyard/cuda/gating.cuh";
  f.cuda_function = "switchyard::cuda::route_priority";
  f.cuda_dtypes = {DType::kFloat32};
  return f;
}

KernelFamily gate_backward_family() {
  return base("gate_backward", true);
}

KernelSpec gate_backward_spec(DType gate_dtype, int64_t experts, int64_t top_k, bool normalize, const Target& target) {
  return {"gate_backward",
          {{"dtype", gate_dtype}, {"experts", experts}, {"top_k", top_k}, {"normalize", normalize}},
          target};
}

KernelSpec gate_topk_spec(DType gate_dtype, int64_t experts, int64_t top_k, bool normalize, const Target& target) {
  return {
      "gate_topk", {{"dtype", gate_dtype}, {"experts", experts}, {"top_k", top_k}, {"normalize", normalize}}, target};
}

KernelSpec route_locations_spec(DType gate_dtype, int64_t experts, int64_t top_k, const Target& target) {
  return {"route_locations", {{"dtype", gate_dtype}, {"experts", experts}, {"top_k", top_k}}, target};
}

KernelSpec route_priority_spec(DType score_dtype, const Target& target) {
  return {"route_priority", {{"dtype", score_dtype}}, target};
}

DType score_dtype_for(DType dtype) {
  return dtype == DType::kFloat64 ? DType::kFloat64 : DType::kFloat32;
}

LaunchConfig gating_launch_config(const KernelSpec& spec, int64_t tokens, unsigned parallelism) {
  return spec.target.is_cuda() ? thread_per_item(tokens, 128) : cpu_blocks(tokens, 1, int64_t{parallelism} * 4);
}

LaunchConfig route_locations_launch_config(const KernelSpec& spec, int64_t experts) {
  LaunchConfig config;
  config.grid = spec.target.is_cuda() ? static_cast<unsigned>(experts) : 1;
  config.block = spec.target.is_cuda() ? 256 : 1;
  return config;
}

LaunchConfig route_priority_launch_config(const KernelSpec& spec, int64_t tokens) {
  return spec.target.is_cuda() ? thread_per_item(tokens, 256) : LaunchConfig{1, 1, 0};
}

}  // namespace switchyard::kernels
