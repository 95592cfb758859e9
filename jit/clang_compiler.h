// CPU compiler: clang + LLVM 16 in process -> object file, LLVM IR and assembly for the host
// CPU. Templates reach clang through an in-memory file system; no system header is visible.
#pragma once

#include "jit/compiler.h"

namespace switchyard {

class ClangCompiler final : public Compiler {
 public:
  ClangCompiler();
  std::string identity() const override;
  std::vector<std::string> options(const Target& target) const override;
  Binary compile(const KernelSpec& spec, const Source& source) const override;

  /// Host CPU name and sorted feature string (+avx2,+fma,...), as LLVM sees them.
  const std::string& host_cpu() const { return cpu_; }
  const std::string& host_features() const { return features_; }

 private:
  std::string cpu_;
  std::string features_;
};

/// "16.0.6" of the LLVM this library links.
std::string llvm_version();

}  // namespace switchyard
