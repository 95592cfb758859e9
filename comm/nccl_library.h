// NCCL, loaded at run time (dlopen) so that a machine without it still runs the CPU path. The
// few types used are declared here with NCCL's ABI values: no CUDA header is needed to build.
#pragma once

#include <cstddef>
#include <string>

namespace switchyard::comm {

namespace nccl {
using Comm = struct ncclComm*;
using Stream = void*;  // cudaStream_t / CUstream
struct UniqueId {
  char internal[128];
};
enum Result : int { kSuccess = 0, kInProgress = 7 };
enum DataType : int { kInt8 = 0, kInt32 = 2, kInt64 = 4, kFloat16 = 6, kFloat32 = 7, kFloat64 = 8, kBFloat16 = 9 };
enum RedOp : int { kSum = 0, kMax = 2 };
}  // namespace nccl

struct NcclLibrary {
  int (*get_version)(int*);
  int (*get_unique_id)(nccl::UniqueId*);
  int (*comm_init_rank)(nccl::Comm*, int, nccl::UniqueId, int);
  int (*comm_destroy)(nccl::Comm);
  int (*comm_abort)(nccl::Comm);
  int (*comm_get_async_error)(nccl::Comm, int*);
  const char* (*get_error_string)(int);
  int (*group_start)();
  int (*group_end)();
  int (*send)(const void*, size_t, int, int, nccl::Comm, nccl::Stream);
  int (*recv)(void*, size_t, int, int, nccl::Comm, nccl::Stream);
  int (*all_reduce)(const void*, void*, size_t, int, int, nccl::Comm, nccl::Stream);
  int (*reduce_scatter)(const void*, void*, size_t, int, int, nccl::Comm, nccl::Stream);

  /// The process's NCCL (libnccl.so.2 from SWITCHYARD_CUDA_HOME/lib(64), then the loader path);
  /// throws BackendError saying why when it cannot be loaded.
  static const NcclLibrary& get();
  /// Why NCCL is unavailable, or "" when it loads.
  static std::string unavailable_reason();
  /// e.g. "2.27.7".
  std::string version() const;
};

}  // namespace switchyard::comm
