// A CUDA device through the driver API: its primary context, a compute stream (every launch
// and copy: its own, or a caller's while one is in use), a communication stream (NCCL), CUBIN
// modules.
#pragma once

#include <functional>
#include <mutex>
#include <unordered_map>

#include "comm/cuda_stream_hooks.h"
#include "runtime/cuda_driver.h"
#include "runtime/device.h"

namespace switchyard {

class CudaDevice final : public Device {
 public:
  /// Opens device `ordinal`; throws BackendError (with the reason) when there is none.
  explicit CudaDevice(int ordinal = 0);
  ~CudaDevice() override;
  CudaDevice(const CudaDevice&) = delete;
  CudaDevice& operator=(const CudaDevice&) = delete;

  std::string name() const override { return "cuda:" + std::to_string(ordinal_); }
  bool is_cuda() const override { return true; }
  DeviceRef ref() const override { return {DeviceRef::Kind::kCuda, ordinal_}; }
  /// sm_XX of the device; sm_90a on Hopper (compute capability 9.0), whose wgmma and setmaxnreg
  /// instructions exist only in arch-specific code, which every 9.0 device runs.
  Target target() const override { return Target::cuda(sm_, sm_ == 90); }
  std::unique_ptr<LoadedKernel> load(const Binary& binary) override;
  /// Page-locks [host, host + bytes) for this device's copies (cuMemHostRegister); false when the
  /// driver refuses (the memory stays usable, pageable). Undo with unregister_host before freeing.
  bool register_host(void* host, size_t bytes) noexcept;
  void unregister_host(void* host) noexcept;
  void launch(const LoadedKernel& kernel, const LaunchConfig& config, void** params) override;
  /// Stream-ordered, from the device's memory pool, which keeps what is freed for the next
  /// allocation (no driver call that synchronizes once a step's sizes have been seen).
  void* allocate(size_t bytes) override;
  void release(void* pointer) noexcept override;
  void trim_memory() noexcept override;
  void fill_zero(void* pointer, size_t bytes) override;
  void copy_within(void* dst, const void* src, size_t bytes) override;
  unsigned parallelism() const override { return multiprocessors_; }
  const std::string& device_name() const { return device_name_; }
  /// The stream every launch and copy goes to, and a poll of it (0 done, 1 running, -1 failed).
  void* stream() const { return stream_; }
  /// Device::use_stream.
  void* switch_stream(void* stream);
  /// `pointer` (a buffer of this device) goes to the caller, who may use it on the stream in use
  /// now after the call returns: when that is a caller's stream, the buffer is freed there.
  void hand_out(void* pointer);
  int query_stream() const;
  /// What a GPU communicator (NCCL) on this device enqueues on and waits for: the communication
  /// stream, made to wait for the compute stream's work before each collective, and events that
  /// mark single collectives. Valid while the device lives.
  comm::CudaStreamHooks communication_hooks();
  /// The most device memory this process's buffers held at once, and the most the pool reserved
  /// from the driver for them, in bytes.
  struct MemoryHighWater {
    unsigned long long used = 0;
    unsigned long long reserved = 0;
  };
  MemoryHighWater memory_high_water() const;
  /// Starts both marks again from what is in use and reserved now.
  void reset_memory_high_water();
  /// The TMA descriptor of a 3-D tensor of `dtype` values (float16, bfloat16 or float32) at
  /// `base` (dims innermost first; strides in bytes of dims 1 and 2), read in boxes of `box`
  /// elements through the 128-byte swizzle; reads out of bounds give zeros. UserError naming the
  /// tensor when the driver refuses it (a base or stride not a multiple of 16 bytes).
  kernels::TmaDescriptor tma_descriptor(DType dtype, const void* base, const unsigned long long (&dims)[3],
                                        const unsigned long long (&strides)[2], const unsigned (&box)[3]) const;

 protected:
  void copy_rows(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, size_t rows) override;
  void write_from_host(void* device_dst, const void* host_src, size_t bytes) override;
  void read_to_host(void* host_dst, const void* device_src, size_t bytes) override;
  void wait_idle() override;

 private:
  void make_current() const;

  const CudaDriver& driver_;
  int ordinal_;
  CUdevice device_ = 0;
  CUcontext context_ = nullptr;
  CUstream own_stream_ = nullptr;
  CUstream stream_ = nullptr;  // the compute stream in use: own_stream_ or a caller's
  CUstream comm_stream_ = nullptr;
  CUevent stream_switch_ = nullptr;  // orders a newly used stream after the one it replaces
  // Buffers handed out on a caller's stream: freed there (the caller's later work may read them),
  // after the stream in use at the free (release_fence_).
  std::mutex callers_buffers_mutex_;
  std::unordered_map<void*, CUstream> callers_buffers_;
  CUevent release_fence_ = nullptr;
  CUevent fence_ = nullptr;      // compute -> communication ordering, re-recorded at each collective
  CUmemoryPool pool_ = nullptr;  // the device's default pool, told to keep what is freed
  int sm_ = 0;
  unsigned multiprocessors_ = 0;
  std::string device_name_;
};

}  // namespace switchyard
