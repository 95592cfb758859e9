// A per-key advisory lock (fcntl OFD lock) so that N processes compile a cold kernel once.
// The kernel drops it if the holder dies, so a crashed compiler never wedges the cache.
#pragma once

#include <string>

namespace switchyard::cache {

class FileLock {
 public:
  /// Blocks until the exclusive lock on `path` is held. When the lock file cannot be created
  /// (read-only directory) the lock is a no-op and held() is false.
  explicit FileLock(const std::string& path);
  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&&) = delete;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();
  bool held() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

}  // namespace switchyard::cache
