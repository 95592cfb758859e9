// OrcLoader for builds without the CPU JIT (SY_WITH_CPU_JIT=OFF).
#include "core/error.h"
#include "runtime/orc_loader.h"

namespace switchyard {

struct OrcLoader::Impl {};

OrcLoader::OrcLoader(bool perf_map) : perf_map_(perf_map) {}
OrcLoader::~OrcLoader() = default;

CpuKernelFunction OrcLoader::load(const std::string&, const std::string&, const std::string& label) {
  SY_THROW(BackendError) << "cannot load " << label
                         << ": this build has no CPU JIT (configured with SY_WITH_CPU_JIT=OFF)";
}

}  // namespace switchyard
