// The one exception hierarchy of the public API. Every error carries a message that names the
// bad value and what was expected; CompileError also carries the compiler's log and options.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace switchyard {

/// Base of every exception Switchyard throws.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

/// The caller passed something invalid (bad option, shape, file, config).
class UserError : public Error {
 public:
  explicit UserError(const std::string& what) : Error(what) {}
};

/// A foreign library (NVRTC, CUDA driver, LLVM, MPI, the OS) reported a failure.
class BackendError : public Error {
 public:
  explicit BackendError(const std::string& what) : Error(what) {}
};

/// A collective could not complete: a peer stalled past the watchdog's timeout, died, or the
/// communicator broke earlier. The communicator is unusable afterwards.
class CommError : public Error {
 public:
  explicit CommError(const std::string& what) : Error(what) {}
};

/// A kernel failed to compile; what() holds the numbered source excerpt, options and log.
class CompileError : public Error {
 public:
  CompileError(const std::string& what, std::string log, std::string options)
      : Error(what), log_(std::move(log)), options_(std::move(options)) {}
  const std::string& log() const { return log_; }
  const std::string& options() const { return options_; }

 private:
  std::string log_;
  std::string options_;
};

/// A broken invariant inside Switchyard itself.
class InternalError : public Error {
 public:
  explicit InternalError(const std::string& what) : Error(what) {}
};

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
