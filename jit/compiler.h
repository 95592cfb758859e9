// The compile stage: Source -> Binary. Two implementations: NVRTC (CUDA) and clang/LLVM (CPU).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "jit/kernel_spec.h"
#include "jit/source.h"

namespace switchyard {

/// A compiled kernel: every artifact by file name, plus what is needed to load and launch it.
struct Binary {
  std::string spec_text;
  std::string symbol;                            // CPU: exported symbol; CUDA: lowered (mangled) kernel name
  std::string loadable;                          // artifact name the device loads: kernel.o or kernel.cubin
  std::map<std::string, std::string> artifacts;  // kernel.o/.ll/.s or kernel.cubin/.ptx
  std::string log;                               // compiler log (warnings; ptxas resource usage on CUDA)
  double compile_ms = 0;
};

class Compiler {
 public:
  virtual ~Compiler() = default;
  /// Exact identity of the compiler for the cache key (version, build, host CPU and features).
  virtual std::string identity() const = 0;
  /// The options for `target`, normalized: no absolute paths, stable order.
  virtual std::vector<std::string> options(const Target& target) const = 0;
  /// Compiles; throws CompileError (numbered source, options, log) on failure.
  virtual Binary compile(const KernelSpec& spec, const Source& source) const = 0;
  /// Why this process cannot run what this compiler produces ("" when it can): a CPU compiler
  /// told to target features the host lacks still compiles (to warm a fleet's cache).
  virtual std::string why_kernels_cannot_run_here() const { return {}; }
};

/// Joins options with spaces, for keys and messages.
std::string join_options(const std::vector<std::string>& options);

}  // namespace switchyard
