#include "cache/file_lock.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace switchyard::cache {

FileLock::FileLock(const std::string& path) {
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (fd_ < 0) return;
  struct flock request {};
  request.l_type = F_WRLCK;
  request.l_whence = SEEK_SET;
  // NOTE: OFD locks belong to the open file description, so two threads of one process also
  // exclude each other (classic POSIX locks would not).
  while (::fcntl(fd_, F_OFD_SETLKW, &request) != 0) {
    if (errno != EINTR) {
      ::close(fd_);
      fd_ = -1;
      return;
    }
  }
}

FileLock::FileLock(FileLock&& other) noexcept : fd_(other.fd_) {
  other.fd_ = -1;
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the description releases the OFD lock
}

}  // namespace switchyard::cache
