#include "jit/kernels/dispatch.h"

#include <switchyard/common/dispatch_args.h>
#include <switchyard/common/launch_rules.h>

#include "core/error.h"

namespace switchyard::kernels {
namespace {

KernelFamily base_family(const std::string& name) {
  KernelFamily f;
  f.name = name;
  f.params = {{"dtype", ParamDecl::Kind::kDType},
              {"model_dim", ParamDecl::Kind::kInt, 1, 1 << 20},
              {"top_k", ParamDecl::Kind::kInt, 1, 4096},
              {"apply_gate", ParamDecl::Kind::kBool},
              {"vec", ParamDecl::Kind::kInt, 1, 8}};
  f.cpu_header = "switchyard/cpu/" + name + ".hpp";
  f.cpu_function = "switchyard::cpu::" + name;
  f.cuda_header = "switchyard/cuda/" + name + ".cuh";
  f.cuda_function = "switchyard::cuda::" + name;
  f.args_type = "switchyard::kernels::DispatchArgs";
  f.cpu_dtypes = {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16};
  f.cuda_dtypes = {DType::kFloat32, DType::kFloat16, DType::kBFloat16};
  f.check = [](const KernelSpec& spec) {
    int64_t vec = spec.int_param("vec");
    int64_t model_dim = spec.int_param("model_dim");
    SY_CHECK(model_dim % vec == 0) << "kernel spec " << spec.to_string() << ": model_dim " << model_dim
                                   << " is not a multiple of vec " << vec;
    SY_CHECK(vec * static_cast<int64_t>(dtype_size(spec.dtype_param("dtype"))) <= 16)
        << "kernel spec " << spec.to_string() << ": vec " << vec << " makes a pack wider than 16 bytes";
    SY_CHECK(!spec.target.is_cpu() || vec == 1)
        << "kernel spec " << spec.to_string() << ": the CPU template takes vec=1";
  };
  return f;
}

}  // namespace

KernelFamily dispatch_encode_family() {
  return base_family("dispatch_encode");
}
KernelFamily combine_decode_family() {
  return base_family("combine_decode");
}

KernelFamily gate_grad_family() {
  KernelFamily f = base_family("gate_grad");
  f.params.erase(f.params.begin() + 3);  // no apply_gate: the gates are not read
  return f;
}

KernelSpec gate_grad_spec(DType dtype, int64_t model_dim, int64_t top_k, const Target& target) {
  return {"gate_grad",
          {{"dtype", dtype},
           {"model_dim", model_dim},
           {"top_k", top_k},
           {"vec", static_cast<int64_t>(dispatch_vec_width(dtype, model_dim, target))}},
          target};
}

int dispatch_vec_width(DType dtype, int64_t model_dim, const Target& target) {
  if (target.is_cpu()) return 1;
  int64_t element = static_cast<int64_t>(dtype_size(dtype));
  for (int64_t bytes = 16; bytes > element; bytes /= 2) {
    int64_t vec = bytes / element;
    if (model_dim % vec == 0) return static_cast<int>(vec);
  }
  return 1;
}

KernelSpec dispatch_spec(bool encode, DType dtype, int64_t model_dim, int64_t top_k, bool is_postscore,
                         const Target& target) {
  KernelSpec spec;
  spec.family = encode ? "dispatch_encode" : "combine_decode";
  bool apply_gate = encode ? !is_postscore : is_postscore;
  spec.params = {{"dtype", dtype},
                 {"model_dim", model_dim},
                 {"top_k", top_k},
                 {"apply_gate", apply_gate},
                 {"vec", static_cast<int64_t>(dispatch_vec_width(dtype, model_dim, target))}};
  spec.target = target;
  return spec;
}

LaunchConfig dispatch_launch_config(const KernelSpec& spec, int64_t tokens, unsigned parallelism) {
  LaunchConfig config;
  if (spec.target.is_cuda()) {
    const int64_t per_block = dispatch_tokens_per_block(static_cast<int>(spec.int_param("model_dim")),
                                                        static_cast<int>(spec.int_param("vec")));
    config.grid = static_cast<unsigned>((tokens + per_block - 1) / per_block);
    config.block = kDispatchThreadsPerBlock;
  } else {
    config.grid = parallelism * 4;  // blocks split the tokens (and the rows to zero) evenly
  }
  return config;
}

LaunchConfig gate_grad_launch_config(const KernelSpec& spec, int64_t tokens, unsigned parallelism) {
  if (!spec.target.is_cuda()) return cpu_blocks(tokens, 1, int64_t{parallelism} * 4);
  // a warp per token
  return {static_cast<unsigned>((tokens + kGateGradTokensPerBlock - 1) / kGateGradTokensPerBlock),
          kGateGradTokensPerBlock * 32, 0};
}
}  // namespace switchyard::kernels
