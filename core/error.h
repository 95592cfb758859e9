// Switchyard's checks: the public exception hierarchy (switchyard/error.h) and the macros that
// throw it with a streamed message.
#pragma once

#include <sstream>
#include <string>

#include <switchyard/error.h>

namespace switchyard {

namespace detail {

// Collects a streamed message and throws it when the full expression ends.
template <typename E>
class Thrower {
 public:
  Thrower(const char* condition, const char* file, int line) {
    if (condition != nullptr) stream_ << "check failed: " << condition << " (" << file << ":" << line << "): ";
  }
  Thrower(const Thrower&) = delete;
  Thrower& operator=(const Thrower&) = delete;
  [[noreturn]] ~Thrower() noexcept(false) { throw E(stream_.str()); }
  template <typename V>
  Thrower& operator<<(const V& value) {
    stream_ << value;
    return *this;
  }

 private:
  std::ostringstream stream_;
};

}  // namespace detail
}  // namespace switchyard

// SY_CHECK(cond) << "message";  throws UserError when cond is false.
#define SY_CHECK(cond) \
  if (cond) {          \
  } else               \
    ::switchyard::detail::Thrower<::switchyard::UserError>(nullptr, __FILE__, __LINE__)

// SY_THROW(Kind) << "message";  throws the given Error subclass.
#define SY_THROW(Kind) ::switchyard::detail::Thrower<::switchyard::Kind>(nullptr, __FILE__, __LINE__)

// SY_INTERNAL_CHECK(cond): an invariant of ours, reported with its text and location.
#define SY_INTERNAL_CHECK(cond) \
  if (cond) {                   \
  } else                        \
    ::switchyard::detail::Thrower<::switchyard::InternalError>(#cond, __FILE__, __LINE__)
