#include "jit/compiler.h"

#include "jit/cpu_target.h"

#include <algorithm>

namespace switchyard {
namespace {

std::string join(const std::vector<std::string>& parts, const char* separator) {
  std::string text;
  for (const auto& part : parts) text += (text.empty() ? "" : separator) + part;
  return text;
}

}  // namespace

std::string join_options(const std::vector<std::string>& options) {
  return join(options, " ");
}

// NOTE: here, not in cpu_target.cpp, because builds without the CPU JIT report it too.
std::string CpuTarget::feature_string() const {
  return join(features, ",");
}

bool CpuTarget::has_feature(const std::string& feature) const {
  return std::find(features.begin(), features.end(), feature) != features.end();
}

int CpuTarget::vector_bytes() const {
  return has_feature("+avx512f") ? 64 : has_feature("+avx") ? 32 : 16;
}

long CpuTarget::l2_bytes() const {
  constexpr long kRequestedCpuL2 = 1L << 20;
  return requested ? kRequestedCpuL2 : host_l2_bytes();
}

Target CpuTarget::kernel_target() const {
  return Target::cpu(vector_bytes(), l2_bytes(), cpu_features_of(triple, features));
}

}  // namespace switchyard
