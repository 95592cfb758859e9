#include "runtime/cpu_device.h"

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

constexpr size_t kCpuAlignment = 64;

}  // namespace

CpuDevice::CpuDevice(unsigned threads) : pool_(threads) {}

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
  size_t rounded = (bytes + kCpuAlignment - 1) / kCpuAlignment * kCpuAlignment;
  void* pointer = std::aligned_alloc(kCpuAlignment, rounded == 0 ? kCpuAlignment : rounded);
  if (pointer == nullptr) SY_THROW(BackendError) << "cannot allocate " << bytes << " bytes of host memory";
  return pointer;
}

void CpuDevice::release(void* pointer) noexcept { std::free(pointer); }

void CpuDevice::fill_zero(void* pointer, size_t bytes) {
  if (bytes > 0) std::memset(pointer, 0, bytes);
}

void CpuDevice::copy_from_host(void* device_dst, const void* host_src, size_t bytes) {
  if (bytes > 0) std::memcpy(device_dst, host_src, bytes);
}

void CpuDevice::copy_to_host(void* host_dst, const void* device_src, size_t bytes) {
  if (bytes > 0) std::memcpy(host_dst, device_src, bytes);
}

}  // namespace switchyard
