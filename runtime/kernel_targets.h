// Shared by warm and dump: which targets to build for, and the kernel list they expand to.
#pragma once

#include <string>
#include <vector>

#include <functional>

#include "jit/kernel_store.h"
#include "runtime/model_config.h"

namespace switchyard {

struct TargetChoice {
  std::vector<Target> targets;
  std::vector<std::string> left_out;  // default targets this build or machine cannot compile, and why
};

/// Parses --target values; a target this build cannot compile is a UserError naming the build
/// option. With none given, what this build and machine can compile and run: cpu (when the
/// build has the CPU JIT) and each local GPU's sm_XX (when NVRTC is there); with neither,
/// sm_80 and sm_90a (what A100s and H100/H200s run), which NVRTC compiles without a GPU.
TargetChoice resolve_targets(const std::vector<std::string>& texts);
/// Every kernel of `config` for every target; skipped combinations are returned in `skipped`.
std::vector<KernelSpec> plan_kernels(const ModelConfig& config, const std::vector<Target>& targets,
                                     std::vector<std::string>& skipped);
/// Obtains every spec through the store with `jobs` threads, calling `done(i, result)` as each
/// finishes (serialized). The first error is rethrown after all threads stop.
void obtain_all(const std::vector<KernelSpec>& specs, unsigned jobs,
                const std::function<void(size_t, const ObtainResult&)>& done);

}  // namespace switchyard
