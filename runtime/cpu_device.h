// The CPU device: kernels are object files linked with ORC; a launch runs the grid's blocks on
// the thread pool (SWITCHYARD_NUM_THREADS, default all cores).
#pragma once

#include "runtime/device.h"
#include "runtime/host_block_cache.h"
#include "runtime/orc_loader.h"
#include "runtime/thread_pool.h"

namespace switchyard {

struct CpuDeviceOptions {
  unsigned threads = 0;           // the pool's threads; 0 = every core
  Target target = Target::cpu();  // what its kernels are compiled for (its vector width sizes specs)
  bool perf_map = false;          // name each loaded kernel's functions in perf's map of the process
  bool huge_pages = true;         // large buffers on transparent huge pages (runtime/host_memory.h)
};

class CpuDevice final : public Device {
 public:
  explicit CpuDevice(const CpuDeviceOptions& options = {});
  std::string name() const override { return "cpu"; }
  bool is_cuda() const override { return false; }
  DeviceRef ref() const override { return {}; }
  Target target() const override { return target_; }
  std::unique_ptr<LoadedKernel> load(const Binary& binary) override;
  void launch(const LoadedKernel& kernel, const LaunchConfig& config, void** params) override;
  void* allocate(size_t bytes) override;
  void release(void* pointer) noexcept override;
  void trim_memory() noexcept override { blocks_.trim(); }
  /// The buffer cache's counts: blocks from the C library, bytes in use, cached and at most.
  HostBlockCache::Stats memory_stats() const { return blocks_.stats(); }
  void reset_memory_high_water() { blocks_.reset_high_water(); }
  void fill_zero(void* pointer, size_t bytes) override;
  void copy_within(void* dst, const void* src, size_t bytes) override;
  unsigned parallelism() const override { return pool_.size(); }

 protected:
  void copy_rows(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, size_t rows) override;
  void write_from_host(void* device_dst, const void* host_src, size_t bytes) override;
  void read_to_host(void* host_dst, const void* device_src, size_t bytes) override;
  void wait_idle() override {}

 private:
  HostBlockCache blocks_;  // NOTE: before the pool, so no worker outlives it
  ThreadPool pool_;
  Target target_;
  OrcLoader loader_;
};

}  // namespace switchyard
