#include "runtime/cpu_device.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/error.h"

namespace switchyard {
namespace {

class CpuKernel final : public LoadedKernel {
 public:
  CpuKernelFunction function = nullptr;
};

}  // namespace

CpuDevice::CpuDevice(const CpuDeviceOptions& options)
    : blocks_(options.huge_pages), pool_(options.threads), target_(options.target), loader_(options.perf_map) {}

std::unique_ptr<LoadedKernel> CpuDevice::load(const Binary& binary) {
  SY_INTERNAL_CHECK(binary.loadable == "kernel.o") << "CPU device cannot load " << binary.loadable;
  auto kernel = std::make_unique<CpuKernel>();
  kernel->spec_text = binary.spec_text;
  kernel->function = loader_.load(binary.artifacts.at("kernel.o"), binary.symbol, binary.spec_text);
  return kernel;
}

void CpuDevice::launch(const LoadedKernel& kernel, const LaunchConfig& config, void** params) {
  auto function = static_cast<const CpuKernel&>(kernel).function;
  unsigned grid = config.grid;
  pool_.parallel_for(grid, [&](uint32_t block) { function(params, block, grid); });
}

void* CpuDevice::allocate(size_t bytes) {
  void* pointer = blocks_.take(bytes);
  if (pointer == nullptr) {
    blocks_.trim();  // what is kept for reuse may be what the system lacks
    pointer = blocks_.take(bytes);
  }
  if (pointer == nullptr) SY_THROW(BackendError) << "cannot allocate " << bytes << " bytes of host memory";
  return pointer;
}

void CpuDevice::release(void* pointer) noexcept {
  blocks_.give_back(pointer);
}

void CpuDevice::fill_zero(void* pointer, size_t bytes) {
  // NOTE: large fills are split across the pool: a single thread cannot saturate memory.
  constexpr size_t kSerialBytes = 1 << 18;
  if (bytes < kSerialBytes || pool_.size() == 1) {
    if (bytes > 0) std::memset(pointer, 0, bytes);
    return;
  }
  const size_t chunk = (bytes + pool_.size() - 1) / pool_.size();
  pool_.parallel_for(pool_.size(), [&](uint32_t i) {
    size_t begin = std::min(bytes, i * chunk), end = std::min(bytes, begin + chunk);
    if (end > begin) std::memset(static_cast<char*>(pointer) + begin, 0, end - begin);
  });
}

void CpuDevice::write_from_host(void* device_dst, const void* host_src, size_t bytes) {
  if (bytes > 0) std::memcpy(device_dst, host_src, bytes);
}

void CpuDevice::read_to_host(void* host_dst, const void* device_src, size_t bytes) {
  if (bytes > 0) std::memcpy(host_dst, device_src, bytes);
}

void CpuDevice::copy_rows(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, size_t rows) {
  auto copy_rows = [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i)
      std::memcpy(static_cast<char*>(dst) + i * dst_pitch, static_cast<const char*>(src) + i * src_pitch, width);
  };
  constexpr size_t kSerialBytes = 1 << 18;  // below this a pool dispatch costs more than the copy
  if (width * rows < kSerialBytes || pool_.size() == 1 || rows < pool_.size()) return copy_rows(0, rows);
  const size_t chunk = (rows + pool_.size() - 1) / pool_.size();
  pool_.parallel_for(pool_.size(),
                     [&](uint32_t i) { copy_rows(std::min(rows, i * chunk), std::min(rows, (i + 1) * chunk)); });
}

void CpuDevice::copy_within(void* dst, const void* src, size_t bytes) {
  // Split across the pool, like a kernel launch, so it is a fair memcpy baseline.
  const size_t chunk = (bytes + pool_.size() - 1) / pool_.size();
  pool_.parallel_for(pool_.size(), [&](uint32_t i) {
    size_t begin = std::min(bytes, i * chunk), end = std::min(bytes, begin + chunk);
    if (end > begin) std::memcpy(static_cast<char*>(dst) + begin, static_cast<const char*>(src) + begin, end - begin);
  });
}

}  // namespace switchyard
