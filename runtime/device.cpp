#include "runtime/device.h"

#include "core/error.h"

namespace switchyard {

LoadedKernel::~LoadedKernel() = default;
Device::~Device() = default;

void Device::copy_2d(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, size_t rows) {
  SY_CHECK(dst_pitch >= width && src_pitch >= width)
      << "copy_2d: pitches " << dst_pitch << " and " << src_pitch << " must be at least the width " << width;
  if (width > 0 && rows > 0) copy_rows(dst, dst_pitch, src, src_pitch, width, rows);
}

}  // namespace switchyard
