// Small POSIX file helpers with errors that name the path and the OS reason.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace switchyard::fs {

/// Reads a whole file; throws BackendError naming the path on failure.
std::string read_file(const std::string& path);
/// Reads a whole file; returns false (and leaves `out` empty) when it cannot be read.
bool try_read_file(const std::string& path, std::string& out);
/// Writes `data` to `path` (created or truncated), optionally fsync'ing it before close.
void write_file(const std::string& path, std::string_view data, bool sync = false);

/// Owns a POSIX file descriptor (negative: none) and closes it when destroyed.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(FileDescriptor&& other) noexcept : fd_(other.release()) {}
  FileDescriptor& operator=(FileDescriptor&&) = delete;
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor();
  int get() const { return fd_; }
  /// Hands the descriptor to the caller, who closes it.
  int release();

 private:
  int fd_;
};

/// A file written a piece at a time (created or truncated; what a piece asks for is never held
/// whole): write() appends, finish() closes it, fsync'ing first if asked. Destroyed unfinished (an
/// error on the way), it is closed as it stands: removing it is the caller's part. Throws
/// BackendError naming the path and the OS reason.
class FileWriter {
 public:
  explicit FileWriter(const std::string& path);
  FileWriter(const FileWriter&) = delete;
  FileWriter& operator=(const FileWriter&) = delete;

  void write(std::string_view data);
  void finish(bool sync);

 private:
  std::string path_;
  FileDescriptor fd_;
};
/// fsyncs a directory so a rename inside it is durable.
void sync_directory(const std::string& path);
/// mkdir -p; returns false when it cannot be created (does not throw).
bool make_directories(const std::string& path);
bool exists(const std::string& path);
bool is_directory(const std::string& path);
/// True when the process can create files in `dir`.
bool is_writable_directory(const std::string& dir);
/// rm -rf; best effort, never throws.
void remove_tree(const std::string& path);
/// Names (not paths) in a directory, sorted; empty when it cannot be read.
std::vector<std::string> list_directory(const std::string& dir);
/// Sum of regular-file sizes below `path`.
uint64_t tree_size(const std::string& path);
/// Modification time of `path` in nanoseconds since the epoch (0 when absent).
int64_t modified_ns(const std::string& path);
/// Sets the modification time of `path` to now.
void touch(const std::string& path);
/// A name unique to this process and call, for temporary files and directories.
std::string unique_suffix();
std::string join(const std::string& a, const std::string& b);

}  // namespace switchyard::fs
