// Shared by warm and dump: which targets to build for, and the kernel list they expand to.
#pragma once

#include <string>
#include <vector>

#include <functional>

#include "jit/kernel_store.h"
#include "runtime/model_config.h"

namespace switchyard::tools {

/// Parses --target values; with none given: cpu, plus the local GPU's sm_XX when present.
std::vector<Target> resolve_targets(const std::vector<std::string>& texts);
/// Every kernel of `config` for every target; skipped combinations are returned in `skipped`.
std::vector<KernelSpec> plan_kernels(const ModelConfig& config, const std::vector<Target>& targets,
                                     std::vector<std::string>& skipped);
/// Obtains every spec through the store with `jobs` threads, calling `done(i, result)` as each
/// finishes (serialized). The first error is rethrown after all threads stop.
void obtain_all(const std::vector<KernelSpec>& specs, unsigned jobs,
                const std::function<void(size_t, const ObtainResult&)>& done);

}  // namespace switchyard::tools
