// The driver and NCCL ABIs that runtime/cuda_driver.h and comm/nccl_library.h mirror (both load
// their library with dlopen and declare no CUDA headers) against the toolkit's cuda.h and
// nccl.h: a field or constant out of place would corrupt data silently.
#include <cuda.h>
#include <gtest/gtest.h>
#include <nccl.h>

#include <cstddef>
#include <cstdint>
#include <tuple>
#include <type_traits>
#include <utility>

#include "comm/nccl_library.h"
#include "runtime/cuda_driver.h"
#include "runtime/device.h"

namespace switchyard {
namespace {

#define SY_SAME_FIELD(field) \
  static_assert(offsetof(CudaMemcpy2D, field) == offsetof(CUDA_MEMCPY2D, field), #field " is out of place")
SY_SAME_FIELD(srcXInBytes);
SY_SAME_FIELD(srcY);
SY_SAME_FIELD(srcMemoryType);
SY_SAME_FIELD(srcHost);
SY_SAME_FIELD(srcDevice);
SY_SAME_FIELD(srcArray);
SY_SAME_FIELD(srcPitch);
SY_SAME_FIELD(dstXInBytes);
SY_SAME_FIELD(dstY);
SY_SAME_FIELD(dstMemoryType);
SY_SAME_FIELD(dstHost);
SY_SAME_FIELD(dstDevice);
SY_SAME_FIELD(dstArray);
SY_SAME_FIELD(dstPitch);
SY_SAME_FIELD(WidthInBytes);
SY_SAME_FIELD(Height);
#undef SY_SAME_FIELD
static_assert(sizeof(CudaMemcpy2D) == sizeof(CUDA_MEMCPY2D));
static_assert(sizeof(CUdeviceptr) == sizeof(::CUdeviceptr));
static_assert(sizeof(CuTensorMap) == sizeof(CUtensorMap) && alignof(CuTensorMap) == alignof(CUtensorMap),
              "a TMA descriptor is passed by value to kernels: its size and alignment must match");

TEST(CudaAbi, ConstantsMatchCudaH) {
  EXPECT_EQ(kCuMemoryTypeDevice, CU_MEMORYTYPE_DEVICE);
  EXPECT_EQ(kCuEventDisableTiming, static_cast<unsigned>(CU_EVENT_DISABLE_TIMING));
  EXPECT_EQ(kCuAttrComputeCapabilityMajor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
  EXPECT_EQ(kCuAttrComputeCapabilityMinor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
  EXPECT_EQ(kCuAttrMultiprocessorCount, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
  EXPECT_EQ(kCuFuncAttrMaxDynamicSharedBytes, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES);
  EXPECT_EQ(kCuMemPoolAttrReleaseThreshold, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD);
  EXPECT_EQ(kCuMemPoolAttrReservedMemHigh, CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH);
  EXPECT_EQ(kCuMemPoolAttrUsedMemHigh, CU_MEMPOOL_ATTR_USED_MEM_HIGH);
  EXPECT_EQ(kCuStreamNonBlocking, static_cast<unsigned>(CU_STREAM_NON_BLOCKING));
  EXPECT_EQ(kLegacyDefaultStream, reinterpret_cast<std::uintptr_t>(CU_STREAM_LEGACY));
  EXPECT_EQ(kCuTensorMapFloat16, CU_TENSOR_MAP_DATA_TYPE_FLOAT16);
  EXPECT_EQ(kCuTensorMapFloat32, CU_TENSOR_MAP_DATA_TYPE_FLOAT32);
  EXPECT_EQ(kCuTensorMapBFloat16, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16);
  EXPECT_EQ(kCuTensorMapInterleaveNone, CU_TENSOR_MAP_INTERLEAVE_NONE);
  EXPECT_EQ(kCuTensorMapSwizzle128B, CU_TENSOR_MAP_SWIZZLE_128B);
  EXPECT_EQ(kCuTensorMapL2Promotion256B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B);
  EXPECT_EQ(kCuTensorMapOobFillNone, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
}

// The mirrored entry points take what cuda.h's take, argument by argument: the same count, and
// at each position the same size and the same pointer-ness (our enums are ints, our handles
// opaque pointers). A dropped or swapped argument fails to compile.
template <typename F>
struct Signature;
template <typename R, typename... A>
struct Signature<R (*)(A...)> {
  using Result = R;
  using Args = std::tuple<A...>;
};

template <typename F, typename G, size_t... I>
constexpr bool same_arguments(std::index_sequence<I...>) {
  using FA = typename Signature<F>::Args;
  using GA = typename Signature<G>::Args;
  return ((sizeof(std::tuple_element_t<I, FA>) == sizeof(std::tuple_element_t<I, GA>) &&
           std::is_pointer_v<std::tuple_element_t<I, FA>> == std::is_pointer_v<std::tuple_element_t<I, GA>>)&&...);
}

template <typename Ours, typename Theirs>
constexpr bool same_abi() {
  constexpr size_t n = std::tuple_size_v<typename Signature<Ours>::Args>;
  if constexpr (n != std::tuple_size_v<typename Signature<Theirs>::Args>) {
    return false;
  } else {
    return sizeof(typename Signature<Ours>::Result) == sizeof(typename Signature<Theirs>::Result) &&
           same_arguments<Ours, Theirs>(std::make_index_sequence<n>{});
  }
}

static_assert(same_abi<decltype(CudaDriver::cuTensorMapEncodeTiled), decltype(&::cuTensorMapEncodeTiled)>());
static_assert(same_abi<decltype(CudaDriver::cuFuncSetAttribute), decltype(&::cuFuncSetAttribute)>());
static_assert(same_abi<decltype(CudaDriver::cuDeviceGetDefaultMemPool), decltype(&::cuDeviceGetDefaultMemPool)>());
static_assert(same_abi<decltype(CudaDriver::cuMemPoolSetAttribute), decltype(&::cuMemPoolSetAttribute)>());
static_assert(same_abi<decltype(CudaDriver::cuMemPoolGetAttribute), decltype(&::cuMemPoolGetAttribute)>());
static_assert(same_abi<decltype(CudaDriver::cuMemAllocAsync), decltype(&::cuMemAllocAsync)>());
static_assert(same_abi<decltype(CudaDriver::cuMemFreeAsync), decltype(&::cuMemFreeAsync)>());
static_assert(same_abi<decltype(CudaDriver::cuMemPoolTrimTo), decltype(&::cuMemPoolTrimTo)>());
static_assert(same_abi<decltype(CudaDriver::cuMemcpy2DAsync_v2), decltype(&::cuMemcpy2DAsync_v2)>());
static_assert(same_abi<decltype(CudaDriver::cuLaunchHostFunc), decltype(&::cuLaunchHostFunc)>());
static_assert(same_abi<decltype(CudaDriver::cuStreamWaitEvent), decltype(&::cuStreamWaitEvent)>());
static_assert(same_abi<decltype(CudaDriver::cuMemHostRegister_v2), decltype(&::cuMemHostRegister_v2)>());
static_assert(same_abi<decltype(CudaDriver::cuMemHostUnregister), decltype(&::cuMemHostUnregister)>());
static_assert(!same_abi<decltype(CudaDriver::cuFuncSetAttribute), decltype(&::cuMemcpy2DAsync_v2)>(),
              "the check tells signatures apart");

TEST(NcclAbi, ConstantsMatchNcclH) {
  namespace n = comm::nccl;
  EXPECT_EQ(n::kSuccess, ncclSuccess);
  EXPECT_EQ(n::kInProgress, ncclInProgress);
  EXPECT_EQ(n::kInt8, ncclInt8);
  EXPECT_EQ(n::kInt32, ncclInt32);
  EXPECT_EQ(n::kInt64, ncclInt64);
  EXPECT_EQ(n::kFloat16, ncclFloat16);
  EXPECT_EQ(n::kFloat32, ncclFloat32);
  EXPECT_EQ(n::kFloat64, ncclFloat64);
  EXPECT_EQ(n::kBFloat16, ncclBfloat16);
  EXPECT_EQ(n::kSum, ncclSum);
  EXPECT_EQ(n::kMax, ncclMax);
  EXPECT_EQ(sizeof(n::UniqueId), sizeof(ncclUniqueId));
}

}  // namespace
}  // namespace switchyard
