#include "jit/nvrtc_library.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <vector>

#include "core/error.h"
#include "core/settings.h"

namespace switchyard {
namespace {

// NOTE: NVRTC dlopens libnvrtc-builtins by soname; loading it first, by path, with RTLD_GLOBAL
// makes that lookup succeed without LD_LIBRARY_PATH.
void* open_nvrtc(std::string& path, std::string& tried) {
  for (const auto& root : cuda_roots()) {
    std::string lib = root + "/lib64/";
    dlopen((lib + "libnvrtc-builtins.so.13.0").c_str(), RTLD_NOW | RTLD_GLOBAL);
    for (const char* name : {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"}) {
      if (void* handle = dlopen((lib + name).c_str(), RTLD_NOW | RTLD_GLOBAL)) {
        path = lib + name;
        return handle;
      }
      tried += " " + lib + name;
    }
  }
  if (void* handle = dlopen("libnvrtc.so.13", RTLD_NOW | RTLD_GLOBAL)) {
    path = "libnvrtc.so.13";
    return handle;
  }
  tried += " libnvrtc.so.13 (library path)";
  return nullptr;
}

struct LoadResult {
  NvrtcLibrary library;
  std::string error;
};

LoadResult load() {
  LoadResult result;
  std::string tried;
  void* handle = open_nvrtc(result.library.path, tried);
  if (handle == nullptr) {
    result.error = "NVRTC not found; tried" + tried + ". Install the CUDA toolkit or set SWITCHYARD_CUDA_HOME";
    return result;
  }
#define SY_RESOLVE(name, ret, args)                                                         \
  result.library.name = reinterpret_cast<ret(*) args>(dlsym(handle, #name));                \
  if (result.library.name == nullptr) {                                                     \
    result.error = std::string("NVRTC at ") + result.library.path + " lacks symbol " #name; \
    return result;                                                                          \
  }
  SY_NVRTC_FUNCTIONS(SY_RESOLVE)
#undef SY_RESOLVE
  result.library.nvrtcVersion(&result.library.major, &result.library.minor);
  return result;
}

const LoadResult& loaded() {
  static const LoadResult result = load();
  return result;
}

}  // namespace

const NvrtcLibrary& NvrtcLibrary::get() {
  const LoadResult& result = loaded();
  if (!result.error.empty()) SY_THROW(BackendError) << result.error;
  return result.library;
}

bool NvrtcLibrary::available() {
  return loaded().error.empty();
}

void nvrtc_check(const NvrtcLibrary& nvrtc, nvrtcResult result, const char* call) {
  if (result != 0)
    SY_THROW(BackendError) << call << " failed: " << nvrtc.nvrtcGetErrorString(result) << " (" << result << ")";
}

}  // namespace switchyard
