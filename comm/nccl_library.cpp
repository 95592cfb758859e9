#include "comm/nccl_library.h"

#include <dlfcn.h>

#include <mutex>
#include <vector>

#include "core/error.h"
#include "core/settings.h"

namespace switchyard::comm {
namespace {

struct Loaded {
  NcclLibrary library{};
  std::string error;
};

void* open_nccl(std::string& tried) {
  std::vector<std::string> paths;
  for (const std::string& root : cuda_roots())
    for (const char* lib : {"/lib/", "/lib64/"}) paths.push_back(root + lib + "libnccl.so.2");
  paths.emplace_back("libnccl.so.2");
  for (const std::string& path : paths) {
    if (void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) return handle;
    tried += (tried.empty() ? "" : "; ") + path + ": " + dlerror();
  }
  return nullptr;
}

template <typename F>
bool resolve(void* handle, const char* name, F& target, std::string& error) {
  target = reinterpret_cast<F>(dlsym(handle, name));
  if (target == nullptr) error = std::string("libnccl.so.2 lacks ") + name;
  return target != nullptr;
}

const Loaded& load() {
  static Loaded loaded;
  static std::once_flag once;
  std::call_once(once, [] {
    std::string tried;
    void* handle = open_nccl(tried);
    if (handle == nullptr) {
      loaded.error = "NCCL cannot be loaded (" + tried + ")";
      return;
    }
    NcclLibrary& l = loaded.library;
    std::string& e = loaded.error;
    resolve(handle, "ncclGetVersion", l.get_version, e) && resolve(handle, "ncclGetUniqueId", l.get_unique_id, e) &&
        resolve(handle, "ncclCommInitRank", l.comm_init_rank, e) &&
        resolve(handle, "ncclCommDestroy", l.comm_destroy, e) && resolve(handle, "ncclCommAbort", l.comm_abort, e) &&
        resolve(handle, "ncclCommGetAsyncError", l.comm_get_async_error, e) &&
        resolve(handle, "ncclGetErrorString", l.get_error_string, e) &&
        resolve(handle, "ncclGroupStart", l.group_start, e) && resolve(handle, "ncclGroupEnd", l.group_end, e) &&
        resolve(handle, "ncclSend", l.send, e) && resolve(handle, "ncclRecv", l.recv, e) &&
        resolve(handle, "ncclAllReduce", l.all_reduce, e) && resolve(handle, "ncclReduceScatter", l.reduce_scatter, e);
  });
  return loaded;
}

}  // namespace

const NcclLibrary& NcclLibrary::get() {
  const Loaded& loaded = load();
  if (!loaded.error.empty()) SY_THROW(BackendError) << loaded.error;
  return loaded.library;
}

std::string NcclLibrary::unavailable_reason() {
  return load().error;
}

std::string NcclLibrary::version() const {
  int code = 0;
  get_version(&code);
  // NCCL >= 2.9 encodes major * 10000 + minor * 100 + patch.
  return std::to_string(code / 10000) + "." + std::to_string(code / 100 % 100) + "." + std::to_string(code % 100);
}

}  // namespace switchyard::comm
