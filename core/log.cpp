#include "core/log.h"

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <set>

#include "core/error.h"

namespace switchyard {
namespace {

std::atomic<int>& level_storage() {
  // NOTE: read SWITCHYARD_LOG once; a bad value falls back to warn with a message rather than
  // throwing from a logging call.
  static std::atomic<int> level = [] {
    const char* text = std::getenv("SWITCHYARD_LOG");
    if (text == nullptr || *text == '\0') return static_cast<int>(LogLevel::kWarn);
    try {
      return static_cast<int>(parse_log_level(text));
    } catch (const Error& e) {
      std::cerr << "switchyard: warning: " << e.what() << "; using warn\n";
      return static_cast<int>(LogLevel::kWarn);
    }
  }();
  return level;
}

const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kError:
      return "error";
    case LogLevel::kWarn:
      return "warning";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kDebug:
      return "debug";
  }
  return "?";
}

}  // namespace

LogLevel log_level() {
  return static_cast<LogLevel>(level_storage().load(std::memory_order_relaxed));
}

void set_log_level(LogLevel level) {
  level_storage().store(static_cast<int>(level));
}

LogLevel parse_log_level(const std::string& text) {
  if (text == "error") return LogLevel::kError;
  if (text == "warn" || text == "warning") return LogLevel::kWarn;
  if (text == "info") return LogLevel::kInfo;
  if (text == "debug") return LogLevel::kDebug;
  SY_THROW(UserError) << "SWITCHYARD_LOG='" << text << "' is not a log level; expected error, warn, info or debug";
}

void log_message(LogLevel level, const std::string& message) {
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  std::cerr << "switchyard: " << level_name(level) << ": " << message << "\n";
}

void log_warn_once(const std::string& once_key, const std::string& message) {
  static std::mutex mutex;
  static std::set<std::string> seen;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (!seen.insert(once_key).second) return;
  }
  if (log_level() >= LogLevel::kWarn) log_message(LogLevel::kWarn, message);
}

}  // namespace switchyard
