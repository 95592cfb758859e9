// A place kernels run: the CPU (a thread pool runs the blocks of the grid) or a CUDA device
// (driver API, one stream). Both take the same kernel names, launch shapes and parameters.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <switchyard/export.h>
#include <switchyard/tensor.h>

namespace switchyard {

// Internal to the library (the JIT); applications only see them through references.
struct Binary;
struct LaunchConfig;
struct Target;

/// A kernel loaded on one device. Owned by the registry; lives as long as the device.
class SWITCHYARD_API LoadedKernel {
 public:
  virtual ~LoadedKernel();
  std::string spec_text;
};

/// CU_STREAM_LEGACY: the handle of the legacy default stream, for Device::use_stream.
inline constexpr std::uintptr_t kLegacyDefaultStream = 0x1;

class SWITCHYARD_API Device {
 public:
  virtual ~Device();  // out of line (device.cpp): the vtable and typeinfo live in the library
  /// "cpu" or "cuda:N".
  virtual std::string name() const = 0;
  virtual bool is_cuda() const = 0;
  /// What tensors on this device carry as their device.
  virtual DeviceRef ref() const = 0;
  /// The compile target of this device (cpu, or sm_XX of the GPU).
  virtual Target target() const = 0;

  virtual std::unique_ptr<LoadedKernel> load(const Binary& binary) = 0;
  /// Launches with `params` as in cuLaunchKernel (params[i] points at argument i). Runs to
  /// completion on the CPU; enqueues on the device's stream on CUDA.
  virtual void launch(const LoadedKernel& kernel, const LaunchConfig& config, void** params) = 0;

  /// Buffers come from a cache on both devices (freed ones are kept for the next allocation of
  /// their size), so a steady-state step asks the system or the driver for no memory.
  virtual void* allocate(size_t bytes) = 0;
  virtual void release(void* pointer) noexcept = 0;
  /// Gives the memory kept for reuse back to the system (CPU) or the driver (CUDA); buffers in use
  /// stay. For a process that is done with a large layer and goes on with other work.
  virtual void trim_memory() noexcept = 0;
  virtual void fill_zero(void* pointer, size_t bytes) = 0;
  /// Host memory to device memory; waits for the device's queued work (CUDA).
  void copy_from_host(void* device_dst, const void* host_src, size_t bytes) {
    ++host_waits_;
    write_from_host(device_dst, host_src, bytes);
  }
  /// Device memory to host memory; waits for the device's queued work (CUDA).
  void copy_to_host(void* host_dst, const void* device_src, size_t bytes) {
    ++host_waits_;
    read_to_host(host_dst, device_src, bytes);
  }
  /// Device-to-device copy (the memcpy baseline of the benchmarks); ordered like launches.
  virtual void copy_within(void* dst, const void* src, size_t bytes) = 0;
  /// `rows` rows of `width` bytes, device to device: row i from src + i * src_pitch to
  /// dst + i * dst_pitch; ordered like launches. UserError when a pitch is below the width.
  void copy_2d(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, size_t rows);
  /// Waits until the device's queued work is done.
  void synchronize() {
    ++host_waits_;
    wait_idle();
  }
  /// Copies between host and device memory and synchronizes so far: on a GPU each makes the host
  /// wait for the queued work. A steady-state single-rank step with a positive capacity factor
  /// (and gshard_loss, and the results not read) makes none; the CPU device counts the same calls.
  uint64_t host_waits() const { return host_waits_.load(std::memory_order_relaxed); }
  /// Threads (CPU) or multiprocessors (CUDA): what launch shapes are sized by.
  virtual unsigned parallelism() const = 0;
  /// Queues this device's work (launches, copies, allocations, frees) on `stream` from now on: a
  /// CUstream of the device's primary context, as a framework's current stream is (PyTorch's
  /// default stream is the legacy one: kLegacyDefaultStream), or, for nullptr, the device's own
  /// stream. Work queued before on the stream it replaces comes first (an event; the host does not
  /// wait). A buffer handed to the caller while a caller's stream is in use (to_dlpack_owning: a
  /// forward's output, a backward's input gradient) is freed on that stream, which must outlive
  /// it; the layer's own buffers are freed on the stream in use then. Returns the stream it
  /// replaces (nullptr: the device's own). One thread drives a device at a time. The CPU has no
  /// streams: nullptr only, else UserError.
  void* use_stream(void* stream);

 protected:
  virtual void write_from_host(void* device_dst, const void* host_src, size_t bytes) = 0;
  virtual void read_to_host(void* host_dst, const void* device_src, size_t bytes) = 0;
  virtual void wait_idle() = 0;
  /// copy_2d with its arguments checked and at least one byte to move.
  virtual void copy_rows(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, size_t rows) = 0;

 private:
  std::atomic<uint64_t> host_waits_{0};  // the comm threads copy too
};

/// Device::use_stream for a scope: queues the device's work on `stream` until destroyed, then on
/// the stream it found.
class SWITCHYARD_API StreamScope {
 public:
  StreamScope(Device& device, void* stream) : device_(device), previous_(device.use_stream(stream)) {}
  ~StreamScope();
  StreamScope(const StreamScope&) = delete;
  StreamScope& operator=(const StreamScope&) = delete;

 private:
  Device& device_;
  void* previous_;
};

}  // namespace switchyard
