// NVRTC loaded at run time with dlopen, so the library runs (CPU only) where CUDA is absent.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

namespace switchyard {

// Minimal NVRTC ABI (nvrtc.h): opaque program handle and int result codes.
using nvrtcProgram = struct _nvrtcProgram*;
using nvrtcResult = int;

#define SY_NVRTC_FUNCTIONS(X)                                                               \
  X(nvrtcGetErrorString, const char*, (nvrtcResult))                                        \
  X(nvrtcVersion, nvrtcResult, (int*, int*))                                                \
  X(nvrtcCreateProgram, nvrtcResult,                                                        \
    (nvrtcProgram*, const char*, const char*, int, const char* const*, const char* const*)) \
  X(nvrtcDestroyProgram, nvrtcResult, (nvrtcProgram*))                                      \
  X(nvrtcCompileProgram, nvrtcResult, (nvrtcProgram, int, const char* const*))              \
  X(nvrtcGetPTXSize, nvrtcResult, (nvrtcProgram, size_t*))                                  \
  X(nvrtcGetPTX, nvrtcResult, (nvrtcProgram, char*))                                        \
  X(nvrtcGetCUBINSize, nvrtcResult, (nvrtcProgram, size_t*))                                \
  X(nvrtcGetCUBIN, nvrtcResult, (nvrtcProgram, char*))                                      \
  X(nvrtcGetProgramLogSize, nvrtcResult, (nvrtcProgram, size_t*))                           \
  X(nvrtcGetProgramLog, nvrtcResult, (nvrtcProgram, char*))                                 \
  X(nvrtcAddNameExpression, nvrtcResult, (nvrtcProgram, const char*))                       \
  X(nvrtcGetLoweredName, nvrtcResult, (nvrtcProgram, const char*, const char**))

struct NvrtcLibrary {
#define SY_DECLARE(name, ret, args) ret(*name) args = nullptr;
  SY_NVRTC_FUNCTIONS(SY_DECLARE)
#undef SY_DECLARE
  std::string path;  // where it was loaded from
  int major = 0;
  int minor = 0;

  /// Loads NVRTC (and its builtins) once per process. Throws BackendError saying where it
  /// looked when it is missing. $SWITCHYARD_CUDA_HOME, then $CUDA_HOME, then /usr/local/cuda.
  static const NvrtcLibrary& get();
  /// True when NVRTC can be loaded on this machine (never throws).
  static bool available();
};

/// Throws BackendError naming the call and NVRTC's error string when `result` is not success.
void nvrtc_check(const NvrtcLibrary& nvrtc, nvrtcResult result, const char* call);

}  // namespace switchyard
