// Process settings from SWITCHYARD_* environment variables, read and validated in one place.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace switchyard {

enum class CacheMode { kReadWrite, kReadOnly, kOff };

/// Every SWITCHYARD_* variable we understand; anything else with that prefix is reported.
const std::vector<std::string>& known_environment_variables();

struct Settings {
  std::string cache_dir;  // resolved directory ("" when none could be determined)
  CacheMode cache_mode = CacheMode::kReadWrite;
  std::optional<uint64_t> cache_max_bytes;  // LRU cap after each publish
  bool force_compile = false;
  std::string dump_dir;      // "" = no dumping
  unsigned num_threads = 0;  // 0 = hardware concurrency
  double comm_timeout_sec = 1800.0;
  std::string cpu;         // SWITCHYARD_CPU: the CPU the CPU JIT compiles for ("" = this host)
  bool perf_map = false;   // SWITCHYARD_PERF_MAP: name CPU kernels' code in /tmp/perf-<pid>.map
  bool huge_pages = true;  // SWITCHYARD_HUGE_PAGES: the CPU device's large buffers on huge pages

  /// Reads the environment. Throws UserError naming the variable for a malformed value; warns
  /// (once) about unknown SWITCHYARD_* names.
  static Settings from_environment();
};

/// Where a CUDA toolkit may be, in order: $SWITCHYARD_CUDA_HOME, $CUDA_HOME, $CUDA_PATH,
/// /usr/local/cuda (NVRTC, nvdisasm and NCCL are looked for under these).
std::vector<std::string> cuda_roots();

/// Default cache directory: $SWITCHYARD_CACHE_DIR, $XDG_CACHE_HOME/switchyard, ~/.cache/switchyard.
std::string default_cache_dir();
CacheMode parse_cache_mode(const std::string& text);
const char* cache_mode_name(CacheMode mode);
/// Parses a byte count such as 1048576, 512K, 64M, 2G.
uint64_t parse_byte_size(const std::string& text, const std::string& what);

}  // namespace switchyard
