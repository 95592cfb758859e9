// CPU compiler: clang + LLVM 16 in process -> object file, LLVM IR and assembly for the host
// CPU. Templates reach clang through an in-memory file system; no system header is visible.
#pragma once

#include "jit/compiler.h"
#include "jit/cpu_target.h"

namespace switchyard {

class ClangCompiler final : public Compiler {
 public:
  /// Compiles for `requested_cpu` (SWITCHYARD_CPU; "" = the host), see resolve_cpu_target.
  explicit ClangCompiler(const std::string& requested_cpu = "");
  /// Compiles for exactly `target` (tests inject unknown host CPUs this way).
  explicit ClangCompiler(CpuTarget target);
  std::string identity() const override;
  std::vector<std::string> options(const Target& target) const override;
  Binary compile(const KernelSpec& spec, const Source& source) const override;
  std::string why_kernels_cannot_run_here() const override;

  /// The CPU name and features every kernel is compiled for, and why they were chosen.
  const CpuTarget& cpu_target() const { return target_; }

 private:
  CpuTarget target_;
};

/// "16.0.6" of the LLVM this library links.
std::string llvm_version();
/// False in builds configured with SY_WITH_CPU_JIT=OFF, which cannot compile for `cpu`.
bool cpu_jit_built();

}  // namespace switchyard
