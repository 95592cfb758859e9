// Leveled logging to stderr, filtered by SWITCHYARD_LOG (error|warn|info|debug; default warn).
#pragma once

#include <sstream>
#include <string>

namespace switchyard {

enum class LogLevel { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

/// The level in force (read from SWITCHYARD_LOG once, or set by set_log_level).
LogLevel log_level();
void set_log_level(LogLevel level);
/// Parses "error|warn|info|debug"; throws UserError on anything else.
LogLevel parse_log_level(const std::string& text);
void log_message(LogLevel level, const std::string& message);
/// Logs a warning only the first time `once_key` is seen in this process.
void log_warn_once(const std::string& once_key, const std::string& message);

namespace detail {
class LogLine {
 public:
  explicit LogLine(LogLevel level) : level_(level) {}
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;
  ~LogLine() { log_message(level_, stream_.str()); }
  template <typename V>
  LogLine& operator<<(const V& value) {
    stream_ << value;
    return *this;
  }

 private:
  LogLevel level_;
  std::ostringstream stream_;
};
}  // namespace detail
}  // namespace switchyard

#define SY_LOG(level)                                              \
  if (::switchyard::log_level() < ::switchyard::LogLevel::level) { \
  } else                                                           \
    ::switchyard::detail::LogLine(::switchyard::LogLevel::level)
