// A per-key advisory lock (fcntl OFD lock) so that N processes compile a cold kernel once.
// The kernel drops it if the holder dies, so a crashed compiler never wedges the cache.
#pragma once

#include <string>

#include "core/fs.h"

namespace switchyard::cache {

class FileLock {
 public:
  /// Blocks until the exclusive lock on `path` is held. When the lock file cannot be created
  /// (read-only directory) the lock is a no-op and held() is false.
  explicit FileLock(const std::string& path);
  FileLock(FileLock&& other) noexcept = default;
  FileLock& operator=(FileLock&&) = delete;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  bool held() const { return fd_.get() >= 0; }

 private:
  fs::FileDescriptor fd_;  // closing the description releases the OFD lock
};

}  // namespace switchyard::cache
