#include "core/settings.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "core/log.h"

extern char** environ;  // NOLINT: POSIX

namespace switchyard {
namespace {

std::string env_or_empty(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

// The boolean environment variable `name`: `when_unset` where it is unset or empty.
bool env_bool(const char* name, bool when_unset) {
  const std::string text = env_or_empty(name);
  std::string lower = text;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lower.empty()) return when_unset;
  if (lower == "1" || lower == "true" || lower == "yes" || lower == "on") return true;
  if (lower == "0" || lower == "false" || lower == "no" || lower == "off") return false;
  SY_THROW(UserError) << name << "='" << text << "' is not a boolean; expected 1/0, true/false, yes/no or on/off";
}

void report_unknown_variables() {
  const auto& known = known_environment_variables();
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string pair = *entry;
    if (pair.rfind("SWITCHYARD_", 0) != 0) continue;
    std::string name = pair.substr(0, pair.find('='));
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      log_warn_once("unknown-env:" + name,
                    "unknown environment variable " + name +
                        " is ignored (known: SWITCHYARD_CACHE_DIR, SWITCHYARD_CACHE, ...; see docs/environment.md)");
    }
  }
}

}  // namespace

const std::vector<std::string>& known_environment_variables() {
  static const std::vector<std::string> names = {"SWITCHYARD_CACHE_DIR",
                                                 "SWITCHYARD_CACHE",
                                                 "SWITCHYARD_CACHE_MAX_BYTES",
                                                 "SWITCHYARD_FORCE_COMPILE",
                                                 "SWITCHYARD_DUMP_DIR",
                                                 "SWITCHYARD_LOG",
                                                 "SWITCHYARD_COMM_TIMEOUT_SEC",
                                                 "SWITCHYARD_NUM_THREADS",
                                                 "SWITCHYARD_CUDA_HOME",
                                                 "SWITCHYARD_CPU",
                                                 "SWITCHYARD_GEMM",
                                                 "SWITCHYARD_PERF_MAP",
                                                 "SWITCHYARD_HUGE_PAGES"};
  return names;
}

std::vector<std::string> cuda_roots() {
  std::vector<std::string> roots;
  for (const char* name : {"SWITCHYARD_CUDA_HOME", "CUDA_HOME", "CUDA_PATH"}) {
    const char* value = std::getenv(name);
    if (value != nullptr && *value != '\0') roots.emplace_back(value);
  }
  roots.emplace_back("/usr/local/cuda");
  return roots;
}

std::string default_cache_dir() {
  std::string dir = env_or_empty("SWITCHYARD_CACHE_DIR");
  if (!dir.empty()) return dir;
  std::string xdg = env_or_empty("XDG_CACHE_HOME");
  if (!xdg.empty()) return xdg + "/switchyard";
  std::string home = env_or_empty("HOME");
  if (!home.empty()) return home + "/.cache/switchyard";
  return "";
}

CacheMode parse_cache_mode(const std::string& text) {
  if (text == "rw" || text.empty()) return CacheMode::kReadWrite;
  if (text == "ro") return CacheMode::kReadOnly;
  if (text == "off") return CacheMode::kOff;
  SY_THROW(UserError) << "SWITCHYARD_CACHE='" << text << "' is not a cache mode; expected rw, ro or off";
}

const char* cache_mode_name(CacheMode mode) {
  switch (mode) {
    case CacheMode::kReadWrite:
      return "rw";
    case CacheMode::kReadOnly:
      return "ro";
    case CacheMode::kOff:
      return "off";
  }
  return "?";
}

uint64_t parse_byte_size(const std::string& text, const std::string& what) {
  char* end = nullptr;
  errno = 0;
  unsigned long long value = std::strtoull(text.c_str(), &end, 10);
  bool ok = !text.empty() && std::isdigit(static_cast<unsigned char>(text[0])) && errno == 0;
  uint64_t scale = 1;
  if (ok && *end != '\0') {
    std::string suffix = end;
    if (suffix == "K" || suffix == "k")
      scale = 1ULL << 10;
    else if (suffix == "M" || suffix == "m")
      scale = 1ULL << 20;
    else if (suffix == "G" || suffix == "g")
      scale = 1ULL << 30;
    else
      ok = false;
  }
  SY_CHECK(ok) << what << "='" << text << "' is not a byte count; expected a number with an optional K, M or G suffix";
  return static_cast<uint64_t>(value) * scale;
}

Settings Settings::from_environment() {
  report_unknown_variables();
  Settings s;
  s.cache_dir = default_cache_dir();
  s.cache_mode = parse_cache_mode(env_or_empty("SWITCHYARD_CACHE"));
  std::string max_bytes = env_or_empty("SWITCHYARD_CACHE_MAX_BYTES");
  if (!max_bytes.empty()) s.cache_max_bytes = parse_byte_size(max_bytes, "SWITCHYARD_CACHE_MAX_BYTES");
  s.force_compile = env_bool("SWITCHYARD_FORCE_COMPILE", false);
  s.dump_dir = env_or_empty("SWITCHYARD_DUMP_DIR");
  s.perf_map = env_bool("SWITCHYARD_PERF_MAP", false);
  s.huge_pages = env_bool("SWITCHYARD_HUGE_PAGES", true);
  // NOTE: validated by the CPU compiler when it is first needed (clang knows the valid names).
  s.cpu = env_or_empty("SWITCHYARD_CPU");
  std::string threads = env_or_empty("SWITCHYARD_NUM_THREADS");
  if (!threads.empty()) {
    char* end = nullptr;
    long n = std::strtol(threads.c_str(), &end, 10);
    SY_CHECK(*end == '\0' && n >= 1 && n <= 4096)
        << "SWITCHYARD_NUM_THREADS='" << threads << "' is not a thread count; expected an integer from 1 to 4096";
    s.num_threads = static_cast<unsigned>(n);
  }
  std::string timeout = env_or_empty("SWITCHYARD_COMM_TIMEOUT_SEC");
  if (!timeout.empty()) {
    char* end = nullptr;
    double t = std::strtod(timeout.c_str(), &end);
    SY_CHECK(*end == '\0' && t > 0 && t < 1e9)
        << "SWITCHYARD_COMM_TIMEOUT_SEC='" << timeout << "' is not a timeout; expected a positive number of seconds";
    s.comm_timeout_sec = t;
  }
  return s;
}

}  // namespace switchyard
