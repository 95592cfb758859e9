#include "runtime/cuda_driver.h"

#include <dlfcn.h>

#include "core/error.h"

namespace switchyard {
namespace {

struct LoadResult {
  CudaDriver driver;
  std::string error;
};

std::string error_name(const CudaDriver& d, CUresult result) {
  const char* name = nullptr;
  if (d.cuGetErrorName != nullptr && d.cuGetErrorName(result, &name) == 0 && name != nullptr) return name;
  return "CUDA error " + std::to_string(result);
}

LoadResult load() {
  LoadResult r;
  void* handle = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    r.error = "no CUDA driver: libcuda.so.1 cannot be loaded (" + std::string(dlerror()) + ")";
    return r;
  }
#define SY_RESOLVE(name, ret, args)                                    \
  r.driver.name = reinterpret_cast<ret(*) args>(dlsym(handle, #name)); \
  if (r.driver.name == nullptr) {                                      \
    r.error = "the CUDA driver lacks " #name " (driver too old?)";     \
    return r;                                                          \
  }
  SY_CUDA_FUNCTIONS(SY_RESOLVE)
#undef SY_RESOLVE
  CUresult init = r.driver.cuInit(0);
  if (init != 0) {
    // NOTE: the toolkit's stub libcuda answers CUDA_ERROR_STUB_LIBRARY (34) on machines without a driver.
    r.error = "no CUDA device: cuInit failed with " + error_name(r.driver, init);
    return r;
  }
  r.driver.cuDriverGetVersion(&r.driver.version);
  r.driver.cuDeviceGetCount(&r.driver.device_count);
  if (r.driver.device_count == 0) r.error = "no CUDA device: the driver reports 0 devices";
  return r;
}

const LoadResult& loaded() {
  static const LoadResult result = load();
  return result;
}

}  // namespace

const CudaDriver& CudaDriver::get() {
  if (!loaded().error.empty()) SY_THROW(BackendError) << loaded().error;
  return loaded().driver;
}

bool CudaDriver::available() {
  return loaded().error.empty();
}

std::string CudaDriver::unavailable_reason() {
  return loaded().error;
}

void cuda_check(CUresult result, const char* call) {
  if (result == 0) return;
  const CudaDriver& d = loaded().driver;
  const char* text = nullptr;
  if (d.cuGetErrorString != nullptr) d.cuGetErrorString(result, &text);
  SY_THROW(BackendError) << call << " failed: " << error_name(d, result)
                         << (text ? std::string(" (") + text + ")" : "");
}

}  // namespace switchyard
