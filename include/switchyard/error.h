// The one exception hierarchy of the public API. Every error carries a message that names the
// bad value and what was expected; CompileError also carries the compiler's log and options.
#pragma once

#include <stdexcept>
#include <string>

#include <switchyard/export.h>

namespace switchyard {

/// Base of every exception Switchyard throws.
class SWITCHYARD_API Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
  ~Error() override;  // out of line (core/error.cpp): the typeinfo lives in the library
};

/// The caller passed something invalid (bad option, shape, file, config).
class SWITCHYARD_API UserError : public Error {
 public:
  explicit UserError(const std::string& what) : Error(what) {}
  ~UserError() override;
};

/// A foreign library (NVRTC, CUDA driver, LLVM, MPI, the OS) reported a failure.
class SWITCHYARD_API BackendError : public Error {
 public:
  explicit BackendError(const std::string& what) : Error(what) {}
  ~BackendError() override;
};

/// A collective could not complete: a peer stalled past the watchdog's timeout, died, or the
/// communicator broke earlier. The communicator is unusable afterwards.
class SWITCHYARD_API CommError : public Error {
 public:
  explicit CommError(const std::string& what) : Error(what) {}
  ~CommError() override;
};

/// A kernel failed to compile; what() holds the numbered source excerpt, options and log.
class SWITCHYARD_API CompileError : public Error {
 public:
  CompileError(const std::string& what, std::string log, std::string options)
      : Error(what), log_(std::move(log)), options_(std::move(options)) {}
  ~CompileError() override;
  const std::string& log() const { return log_; }
  const std::string& options() const { return options_; }

 private:
  std::string log_;
  std::string options_;
};

/// A broken invariant inside Switchyard itself.
class SWITCHYARD_API InternalError : public Error {
 public:
  explicit InternalError(const std::string& what) : Error(what) {}
  ~InternalError() override;
};

}  // namespace switchyard
