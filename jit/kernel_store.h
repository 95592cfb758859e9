// The JIT service: KernelSpec -> Binary through the disk cache, compiling only on a miss.
// A miss takes the per-key lock and checks the cache again, so N processes starting cold
// compile each kernel once. Knows no device: loading is the runtime's job.
#pragma once

#include <switchyard/cache_stats.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "cache/cache_key.h"
#include "cache/disk_cache.h"
#include "core/settings.h"
#include "jit/compiler.h"
#include "jit/cpu_target.h"

namespace switchyard {

struct ObtainResult {
  Binary binary;
  std::string key;
  bool compiled = false;  // false: served from the disk cache
  Source source;
};

class KernelStore {
 public:
  explicit KernelStore(const Settings& settings);
  ~KernelStore();

  /// The binary of `spec`: from disk when cached (and verified), else compiled and published.
  /// Throws UserError for a bad spec, CompileError when the template does not compile.
  ObtainResult obtain(const KernelSpec& spec);
  /// The key `spec` has on this machine, and its components.
  cache::KeyParts key_parts(const KernelSpec& spec, const Source& source);

  const Compiler& compiler_for(const Target& target);
  /// The CPU the CPU JIT compiles for (SWITCHYARD_CPU or this host), and its features.
  const CpuTarget& cpu_target();
  cache::DiskCache& disk() { return disk_; }
  const Settings& settings() const { return settings_; }
  StoreCounters counters() const;

 private:
  ObtainResult compile_and_publish(const KernelSpec& spec, Source source, const cache::KeyParts& parts);
  void explain_miss(const KernelSpec& spec, const cache::KeyParts& parts);

  Settings settings_;
  cache::DiskCache disk_;
  std::mutex compilers_mutex_;
  std::unique_ptr<Compiler> clang_;
  std::unique_ptr<Compiler> nvrtc_;
  std::atomic<uint64_t> disk_hits_{0};
  std::atomic<uint64_t> misses_{0};
  std::atomic<uint64_t> compiles_{0};
  std::atomic<uint64_t> compile_us_{0};
};

/// Converts between a Binary and the cache entry that stores it (artifacts, source, meta).
cache::CacheEntry to_cache_entry(const std::string& key, const Binary& binary, const Source& source,
                                 const cache::KeyParts& parts);
Binary from_cache_entry(const cache::CacheEntry& entry);

}  // namespace switchyard
