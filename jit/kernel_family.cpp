#include "jit/kernel_family.h"

#include <algorithm>

#include "core/error.h"
#include "jit/kernels/cast.h"
#include "jit/kernels/cosine.h"
#include "jit/kernels/dispatch.h"
#include "jit/kernels/elementwise.h"
#include "jit/kernels/example_loss.h"
#include "jit/kernels/gating.h"
#include "jit/kernels/gemm.h"
#include "jit/kernels/init_random.h"

namespace switchyard {

const std::vector<KernelFamily>& kernel_families() {
  static const std::vector<KernelFamily> families = {
      kernels::dispatch_encode_family(), kernels::combine_decode_family(),  kernels::gemm_family(),
      kernels::gate_topk_family(),       kernels::route_locations_family(), kernels::route_priority_family(),
      kernels::gemm_simt_family(),       kernels::gemm_mma_family(),        kernels::gemm_tf32_family(),
      kernels::gemm_wgmma_family(),      kernels::gemm_pack_b_family(),     kernels::cast_family(),
      kernels::gate_grad_family(),       kernels::gate_backward_family(),   kernels::elementwise_family(),
      kernels::example_loss_family(),    kernels::init_random_family(),     kernels::cosine_family()};
  return families;
}

const KernelFamily& find_kernel_family(std::string_view name) {
  for (const auto& family : kernel_families()) {
    if (family.name == name) return family;
  }
  std::string known;
  for (const auto& family : kernel_families()) known += (known.empty() ? "" : ", ") + family.name;
  SY_THROW(UserError) << "unknown kernel family '" << name << "'; known: " << known;
}

ParamValue parse_param_value(const ParamDecl& decl, const std::string& text) {
  switch (decl.kind) {
    case ParamDecl::Kind::kDType:
      return parse_dtype(text);
    case ParamDecl::Kind::kBool:
      SY_CHECK(text == "true" || text == "false")
          << "parameter " << decl.name << "='" << text << "': expected true or false";
      return text == "true";
    case ParamDecl::Kind::kInt: {
      size_t used = 0;
      int64_t value = 0;
      try {
        value = std::stoll(text, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      SY_CHECK(used == text.size() && used > 0)
          << "parameter " << decl.name << "='" << text << "': expected an integer";
      return value;
    }
  }
  SY_THROW(InternalError) << "unhandled parameter kind";
}

namespace {

bool kind_matches(const ParamDecl& decl, const ParamValue& value) {
  switch (decl.kind) {
    case ParamDecl::Kind::kDType:
      return std::holds_alternative<DType>(value);
    case ParamDecl::Kind::kInt:
      return std::holds_alternative<int64_t>(value);
    case ParamDecl::Kind::kBool:
      return std::holds_alternative<bool>(value);
  }
  return false;
}

}  // namespace

void validate_spec(const KernelSpec& spec) {
  const KernelFamily& family = find_kernel_family(spec.family);
  SY_CHECK(spec.params.size() == family.params.size())
      << "kernel spec " << spec.to_string() << " has " << spec.params.size() << " parameters; " << family.name
      << " takes " << family.params.size();
  for (size_t i = 0; i < family.params.size(); ++i) {
    const ParamDecl& decl = family.params[i];
    const auto& [name, value] = spec.params[i];
    SY_CHECK(name == decl.name && kind_matches(decl, value))
        << "kernel spec " << spec.to_string() << ": parameter " << i << " must be " << decl.name;
    if (decl.kind == ParamDecl::Kind::kInt) {
      int64_t v = std::get<int64_t>(value);
      SY_CHECK(v >= decl.min_value && v <= decl.max_value)
          << "kernel spec " << spec.to_string() << ": " << name << "=" << v << " is outside [" << decl.min_value << ", "
          << decl.max_value << "]";
    }
    if (decl.kind == ParamDecl::Kind::kDType) {
      const auto& allowed = spec.target.is_cpu() ? family.cpu_dtypes : family.cuda_dtypes;
      DType d = std::get<DType>(value);
      if (std::find(allowed.begin(), allowed.end(), d) == allowed.end()) {
        std::string list;
        for (DType a : allowed) list += (list.empty() ? "" : ", ") + std::string(dtype_name(a));
        SY_THROW(UserError) << family.name << " does not support dtype " << dtype_name(d) << " on target "
                            << spec.target.to_string() << "; supported: " << list;
      }
    }
  }
  if (family.check) family.check(spec);
}

}  // namespace switchyard
