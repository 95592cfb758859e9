// ClangCompiler for builds without the CPU JIT (SY_WITH_CPU_JIT=OFF, e.g. the lent GPU machine
// where LLVM 16 is not installed): every compile says so instead of failing obscurely.
#include "core/error.h"
#include "jit/clang_compiler.h"

namespace switchyard {

std::string llvm_version() {
  return "not built (SY_WITH_CPU_JIT=OFF)";
}

bool cpu_jit_built() {
  return false;
}

ClangCompiler::ClangCompiler(const std::string&)
    : ClangCompiler(CpuTarget{"", "none", {}, "no CPU JIT in this build", {}}) {}

ClangCompiler::ClangCompiler(CpuTarget target) : target_(std::move(target)) {}

std::string ClangCompiler::why_kernels_cannot_run_here() const {
  return {};
}

std::string ClangCompiler::identity() const {
  return "none";
}

std::vector<std::string> ClangCompiler::options(const Target&) const {
  return {};
}

Binary ClangCompiler::compile(const KernelSpec& spec, const Source&) const {
  SY_THROW(BackendError) << "cannot compile " << spec.to_string()
                         << ": this build has no CPU JIT (configured with SY_WITH_CPU_JIT=OFF)";
}

}  // namespace switchyard
