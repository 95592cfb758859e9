// Loads CPU kernel objects into the process with LLVM ORC LLJIT, one JITDylib per kernel so
// every kernel may export the same entry symbol. With a perf map, each loaded kernel's functions
// are named in /tmp/perf-<pid>.map, where `perf report` looks for JIT'd code.
#pragma once

#include <unistd.h>

#include <memory>
#include <mutex>
#include <string>

namespace switchyard {

using CpuKernelFunction = void (*)(void** params, unsigned block, unsigned grid);

class OrcLoader {
 public:
  explicit OrcLoader(bool perf_map = false);
  ~OrcLoader();
  OrcLoader(const OrcLoader&) = delete;
  OrcLoader& operator=(const OrcLoader&) = delete;

  /// Links `object` (an ELF relocatable) and returns the address of `symbol`. Throws
  /// BackendError with LLVM's message when the object is malformed or the symbol is missing.
  CpuKernelFunction load(const std::string& object, const std::string& symbol, const std::string& label);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::mutex mutex_;
  unsigned next_id_ = 0;
  bool perf_map_ = false;
};

/// Where a perf map of this process goes: /tmp/perf-<pid>.map (perf's fixed place).
inline std::string perf_map_path() {
  return "/tmp/perf-" + std::to_string(::getpid()) + ".map";
}

}  // namespace switchyard
