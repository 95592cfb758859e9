#include "runtime/device.h"

#include "core/error.h"
#include "runtime/cuda_device.h"

namespace switchyard {

LoadedKernel::~LoadedKernel() = default;
Device::~Device() = default;

void Device::copy_2d(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, size_t rows) {
  SY_CHECK(dst_pitch >= width && src_pitch >= width)
      << "copy_2d: pitches " << dst_pitch << " and " << src_pitch << " must be at least the width " << width;
  if (width > 0 && rows > 0) copy_rows(dst, dst_pitch, src, src_pitch, width, rows);
}

void* Device::use_stream(void* stream) {
  if (is_cuda()) return static_cast<CudaDevice*>(this)->switch_stream(stream);
  SY_CHECK(stream == nullptr) << "stream " << stream << " for " << name()
                              << ": the CPU device has no streams; expected none (nullptr)";
  return nullptr;
}

// NOTE: a destructor must not throw; restoring can only fail where the driver already failed.
StreamScope::~StreamScope() {
  try {
    device_.use_stream(previous_);
  } catch (const std::exception&) {
  }
}

}  // namespace switchyard
