// The kernel cache from an application: warm it for a model config before serving, move it
// between machines as one bundle, and read what it holds. The cache is the one the process's
// Context uses (SWITCHYARD_CACHE_DIR, docs/environment.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <switchyard/export.h>

namespace switchyard {

struct WarmOptions {
  /// "cpu", "sm_80", "sm_90a", ...; empty: what this build and machine can compile and run.
  std::vector<std::string> targets;
  bool training = false;  // also the backward and SGD kernels
  unsigned jobs = 1;      // parallel compiles
  /// Called after each kernel (serialized): kernels done so far, the total, the kernel's spec.
  std::function<void(size_t, size_t, const std::string&)> progress;
};

struct WarmReport {
  std::string model;                  // the config's name
  std::vector<std::string> targets;   // what was compiled for
  size_t kernels = 0;                 // every kernel the config can request on those targets
  size_t compiled = 0;                // compiled now
  size_t cached = 0;                  // already in the cache
  std::vector<std::string> skipped;   // dtype/target pairs the templates do not support, and why
  std::vector<std::string> left_out;  // default targets this build or machine cannot compile, and why
  double seconds = 0;
};

/// Compiles into the cache every kernel the model config at `model_config_path` (JSON,
/// docs/model-config.md) can request, so no later call compiles. Throws UserError for a bad
/// config or target, CompileError when a kernel does not compile.
SWITCHYARD_API WarmReport warm(const std::string& model_config_path, const WarmOptions& options = {});

struct CacheStats {
  std::string dir;
  std::string mode;  // SWITCHYARD_CACHE_MODE: readwrite, readonly, off
  bool writable = false;
  size_t entries = 0;
  uint64_t bytes = 0;
};

SWITCHYARD_API CacheStats cache_stats();
/// Writes every entry into one bundle file; returns the entry count.
SWITCHYARD_API size_t export_cache(const std::string& bundle_path);
/// Publishes every entry of a bundle into the cache (checksums verified); returns the entry count.
SWITCHYARD_API size_t import_cache(const std::string& bundle_path);

}  // namespace switchyard
