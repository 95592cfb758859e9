// Where this host runs the CPU's bfloat16 dot-product GEMM (AVX512_BF16 without AMX), and the CPU
// to compile for to run it: tests of what only that kernel does (packed B panels) pick it here.
#pragma once

#include <string>

#include "jit/cpu_target.h"
#include "jit/dtype.h"

namespace switchyard::testing {

struct DotProductCpu {
  bool usable = false;
  std::string cpu;      // Settings::cpu: empty for this host's own, "znver4" on an AMX host
  std::string why_not;  // for GTEST_SKIP where not usable
};

/// This host's CPU where its bfloat16 GEMMs use the dot products (AMD's cores), Zen 4's on an
/// AMX host (which runs Zen 4's instructions), else not usable, with the reason.
inline DotProductCpu dot_product_cpu() {
  const unsigned host = host_cpu_features();
  const bool amx = (host & kCpuAmxBf16) != 0;
  if ((host & kCpuBf16Dot) != 0 && (host & kCpuFastBf16Dot) != 0 && !amx) return {true, "", ""};
  if (amx && resolve_cpu_target(HostCpu::detect(), "znver4").missing_on_host.empty()) return {true, "znver4", ""};
  return {false, "",
          "this CPU runs no bfloat16 dot-product GEMM without AMX (no AVX512_BF16, or Intel's, whose GEMMs convert "
          "their operands): packed panels are never read here"};
}

/// Where this host's `dt` GEMMs read B's panels packed ahead (pack_gemm_b): float32 on any CPU
/// (compiled for the host's own), bfloat16 where dot_product_cpu is usable.
inline DotProductCpu packed_panels_cpu(DType dt) {
  if (dt == DType::kFloat32) return {true, "", ""};
  return dot_product_cpu();
}

}  // namespace switchyard::testing
