// CUDA compiler: NVRTC -> CUBIN for the exact sm_XX (and PTX), with no GPU needed. Template
// headers are handed to NVRTC in memory, so no include path reaches the options or the key.
#pragma once

#include "jit/compiler.h"

namespace switchyard {

class NvrtcCompiler final : public Compiler {
 public:
  std::string identity() const override;
  std::vector<std::string> options(const Target& target) const override;
  Binary compile(const KernelSpec& spec, const Source& source) const override;
};

}  // namespace switchyard
