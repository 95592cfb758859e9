#include "cache/file_lock.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace switchyard::cache {

FileLock::FileLock(const std::string& path) : fd_(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666)) {
  if (fd_.get() < 0) return;
  struct flock request {};
  request.l_type = F_WRLCK;
  request.l_whence = SEEK_SET;
  // NOTE: OFD locks belong to the open file description, so two threads of one process also
  // exclude each other (classic POSIX locks would not).
  while (::fcntl(fd_.get(), F_OFD_SETLKW, &request) != 0) {
    if (errno != EINTR) {
      ::close(fd_.release());  // not held: held() says so
      return;
    }
  }
}

}  // namespace switchyard::cache
