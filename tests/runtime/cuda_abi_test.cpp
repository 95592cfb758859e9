// The driver and NCCL ABIs that runtime/cuda_driver.h and comm/nccl_library.h mirror (both load
// their library with dlopen and declare no CUDA headers) against the toolkit's cuda.h and
// nccl.h: a field or constant out of place would corrupt data silently.
#include <cuda.h>
#include <gtest/gtest.h>
#include <nccl.h>

#include <cstddef>

#include "comm/nccl_library.h"
#include "runtime/cuda_driver.h"

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

TEST(CudaAbi, ConstantsMatchCudaH) {
  EXPECT_EQ(kCuMemoryTypeDevice, CU_MEMORYTYPE_DEVICE);
  EXPECT_EQ(kCuEventDisableTiming, static_cast<unsigned>(CU_EVENT_DISABLE_TIMING));
  EXPECT_EQ(kCuAttrComputeCapabilityMajor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
  EXPECT_EQ(kCuAttrComputeCapabilityMinor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
  EXPECT_EQ(kCuAttrMultiprocessorCount, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
}

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
