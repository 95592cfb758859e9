// The CUDA driver API, loaded from libcuda.so.1 with dlopen: the library and tools run on
// machines without a driver, and say why there is no CUDA device instead of failing to start.
#pragma once

#include <switchyard/common/gemm_wgmma_args.h>

#include <cstddef>
#include <string>

namespace switchyard {

// Minimal driver ABI (cuda.h): handles are opaque pointers, results are ints.
using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
using CUcontext = struct CUctx_st*;
using CUmodule = struct CUmod_st*;
using CUmemoryPool = struct CUmemPoolHandle_st*;
using CUfunction = struct CUfunc_st*;
using CUstream = struct CUstream_st*;
using CUevent = struct CUevent_st*;
using CUhostFn = void (*)(void*);

inline constexpr int kCuAttrComputeCapabilityMajor = 75;
inline constexpr int kCuAttrComputeCapabilityMinor = 76;
inline constexpr int kCuAttrMultiprocessorCount = 16;
inline constexpr int kCuMemoryTypeDevice = 2;               // CU_MEMORYTYPE_DEVICE
inline constexpr unsigned kCuEventDisableTiming = 2;        // CU_EVENT_DISABLE_TIMING
inline constexpr int kCuFuncAttrMaxDynamicSharedBytes = 8;  // CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
inline constexpr int kCuMemPoolAttrReleaseThreshold = 4;    // CU_MEMPOOL_ATTR_RELEASE_THRESHOLD
inline constexpr int kCuMemPoolAttrReservedMemHigh = 6;     // CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH
inline constexpr int kCuMemPoolAttrUsedMemHigh = 8;         // CU_MEMPOOL_ATTR_USED_MEM_HIGH
inline constexpr unsigned kCuStreamNonBlocking = 1;         // CU_STREAM_NON_BLOCKING

/// CUtensorMap: the opaque TMA descriptor kernels take as a __grid_constant__ parameter (the
/// templates' kernels::TmaDescriptor, so that an encoded map goes straight into kernel arguments).
using CuTensorMap = kernels::TmaDescriptor;
// CUtensorMap* enums (cuda.h), as the values cuTensorMapEncodeTiled takes.
inline constexpr int kCuTensorMapFloat16 = 6;   // CU_TENSOR_MAP_DATA_TYPE_FLOAT16
inline constexpr int kCuTensorMapFloat32 = 7;   // CU_TENSOR_MAP_DATA_TYPE_FLOAT32
inline constexpr int kCuTensorMapBFloat16 = 9;  // CU_TENSOR_MAP_DATA_TYPE_BFLOAT16
inline constexpr int kCuTensorMapInterleaveNone = 0;
inline constexpr int kCuTensorMapSwizzle128B = 3;  // CU_TENSOR_MAP_SWIZZLE_128B
inline constexpr int kCuTensorMapL2Promotion256B = 3;
inline constexpr int kCuTensorMapOobFillNone = 0;

/// CUDA_MEMCPY2D, field for field (tests/runtime/cuda_abi_test.cpp compares it with cuda.h).
struct CudaMemcpy2D {
  size_t srcXInBytes;
  size_t srcY;
  int srcMemoryType;
  const void* srcHost;
  CUdeviceptr srcDevice;
  void* srcArray;
  size_t srcPitch;
  size_t dstXInBytes;
  size_t dstY;
  int dstMemoryType;
  void* dstHost;
  CUdeviceptr dstDevice;
  void* dstArray;
  size_t dstPitch;
  size_t WidthInBytes;
  size_t Height;
};

#define SY_CUDA_FUNCTIONS(X)                                                                                      \
  X(cuInit, CUresult, (unsigned))                                                                                 \
  X(cuDriverGetVersion, CUresult, (int*))                                                                         \
  X(cuGetErrorName, CUresult, (CUresult, const char**))                                                           \
  X(cuGetErrorString, CUresult, (CUresult, const char**))                                                         \
  X(cuDeviceGetCount, CUresult, (int*))                                                                           \
  X(cuDeviceGet, CUresult, (CUdevice*, int))                                                                      \
  X(cuDeviceGetName, CUresult, (char*, int, CUdevice))                                                            \
  X(cuDeviceGetAttribute, CUresult, (int*, int, CUdevice))                                                        \
  X(cuDevicePrimaryCtxRetain, CUresult, (CUcontext*, CUdevice))                                                   \
  X(cuDevicePrimaryCtxRelease_v2, CUresult, (CUdevice))                                                           \
  X(cuCtxSetCurrent, CUresult, (CUcontext))                                                                       \
  X(cuCtxSynchronize, CUresult, ())                                                                               \
  X(cuModuleLoadData, CUresult, (CUmodule*, const void*))                                                         \
  X(cuModuleUnload, CUresult, (CUmodule))                                                                         \
  X(cuModuleGetFunction, CUresult, (CUfunction*, CUmodule, const char*))                                          \
  X(cuLaunchKernel, CUresult,                                                                                     \
    (CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, CUstream, void**, void**)) \
  X(cuStreamCreate, CUresult, (CUstream*, unsigned))                                                              \
  X(cuStreamDestroy_v2, CUresult, (CUstream))                                                                     \
  X(cuStreamSynchronize, CUresult, (CUstream))                                                                    \
  X(cuStreamQuery, CUresult, (CUstream))                                                                          \
  X(cuStreamWaitEvent, CUresult, (CUstream, CUevent, unsigned))                                                   \
  X(cuLaunchHostFunc, CUresult, (CUstream, CUhostFn, void*))                                                      \
  X(cuEventCreate, CUresult, (CUevent*, unsigned))                                                                \
  X(cuEventRecord, CUresult, (CUevent, CUstream))                                                                 \
  X(cuEventQuery, CUresult, (CUevent))                                                                            \
  X(cuEventDestroy_v2, CUresult, (CUevent))                                                                       \
  X(cuMemAlloc_v2, CUresult, (CUdeviceptr*, size_t))                                                              \
  X(cuMemFree_v2, CUresult, (CUdeviceptr))                                                                        \
  X(cuMemsetD8Async, CUresult, (CUdeviceptr, unsigned char, size_t, CUstream))                                    \
  X(cuMemcpyHtoD_v2, CUresult, (CUdeviceptr, const void*, size_t))                                                \
  X(cuMemHostRegister_v2, CUresult, (void*, size_t, unsigned))                                                    \
  X(cuMemHostUnregister, CUresult, (void*))                                                                       \
  X(cuMemcpyDtoH_v2, CUresult, (void*, CUdeviceptr, size_t))                                                      \
  X(cuMemcpyDtoDAsync_v2, CUresult, (CUdeviceptr, CUdeviceptr, size_t, CUstream))                                 \
  X(cuMemcpy2DAsync_v2, CUresult, (const CudaMemcpy2D*, CUstream))                                                \
  X(cuDeviceGetDefaultMemPool, CUresult, (CUmemoryPool*, CUdevice))                                               \
  X(cuMemPoolSetAttribute, CUresult, (CUmemoryPool, int, void*))                                                  \
  X(cuMemPoolGetAttribute, CUresult, (CUmemoryPool, int, void*))                                                  \
  X(cuMemAllocAsync, CUresult, (CUdeviceptr*, size_t, CUstream))                                                  \
  X(cuMemFreeAsync, CUresult, (CUdeviceptr, CUstream))                                                            \
  X(cuMemPoolTrimTo, CUresult, (CUmemoryPool, size_t))                                                            \
  X(cuFuncSetAttribute, CUresult, (CUfunction, int, int))                                                         \
  X(cuTensorMapEncodeTiled, CUresult,                                                                             \
    (CuTensorMap*, int, unsigned, void*, const unsigned long long*, const unsigned long long*, const unsigned*,   \
     const unsigned*, int, int, int, int))

struct CudaDriver {
#define SY_DECLARE(name, ret, args) ret(*name) args = nullptr;
  SY_CUDA_FUNCTIONS(SY_DECLARE)
#undef SY_DECLARE
  int version = 0;
  int device_count = 0;

  /// The loaded, initialised driver; throws BackendError with unavailable_reason() otherwise.
  static const CudaDriver& get();
  /// True when the driver loads, initialises and reports at least one device.
  static bool available();
  /// Why there is no usable CUDA device ("" when there is one).
  static std::string unavailable_reason();
};

/// Throws BackendError naming the call and the driver's error name when `result` is not success.
void cuda_check(CUresult result, const char* call);

}  // namespace switchyard
