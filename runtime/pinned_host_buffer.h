// Host memory page-locked for a CUDA device's copies (cuMemHostRegister): a copy from it runs at
// the link's rate straight into device memory, where a copy from pageable memory goes through the
// driver's bounce buffers at a fraction of it. Staging for loads that stream a file into device
// memory (SafetensorsReader::read_into).
#pragma once

#include <cstddef>
#include <memory>

namespace switchyard {

class CudaDevice;
class Device;

class PinnedHostBuffer {
 public:
  PinnedHostBuffer() = default;
  ~PinnedHostBuffer();
  PinnedHostBuffer(const PinnedHostBuffer&) = delete;
  PinnedHostBuffer& operator=(const PinnedHostBuffer&) = delete;

  /// At least `bytes` of host memory, registered with `device` when it is a CUDA device and its
  /// driver agrees; pageable otherwise (a memlock limit, another device): copies work either way,
  /// only slower. Keeps the memory (and its registration) when it is large enough already.
  void reserve(Device& device, size_t bytes);
  char* data() const { return data_.get(); }
  size_t size() const { return bytes_; }
  /// Whether the memory is page-locked for its device.
  bool pinned() const { return pinned_for_ != nullptr; }

 private:
  void unpin() noexcept;

  struct Free {
    void operator()(char* p) const noexcept;
  };
  std::unique_ptr<char, Free> data_;  // page-aligned, as older drivers want registered memory
  size_t bytes_ = 0;
  CudaDevice* pinned_for_ = nullptr;        // the device the memory is registered with
  const CudaDevice* refused_by_ = nullptr;  // the device whose driver refused to register it
};

}  // namespace switchyard
