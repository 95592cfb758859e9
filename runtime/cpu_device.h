// The CPU device: kernels are object files linked with ORC; a launch runs the grid's blocks on
// the thread pool (SWITCHYARD_NUM_THREADS, default all cores).
#pragma once

#include "runtime/device.h"
#include "runtime/orc_loader.h"
#include "runtime/thread_pool.h"

namespace switchyard {

class CpuDevice final : public Device {
 public:
  /// `target`: what kernels for this device are compiled for (its vector width sizes specs).
  explicit CpuDevice(unsigned threads = 0, Target target = Target::cpu());
  std::string name() const override { return "cpu"; }
  bool is_cuda() const override { return false; }
  DeviceRef ref() const override { return {}; }
  Target target() const override { return target_; }
  std::unique_ptr<LoadedKernel> load(const Binary& binary) override;
  void launch(const LoadedKernel& kernel, const LaunchConfig& config, void** params) override;
  void* allocate(size_t bytes) override;
  void release(void* pointer) noexcept override;
  void fill_zero(void* pointer, size_t bytes) override;
  void copy_within(void* dst, const void* src, size_t bytes) override;
  unsigned parallelism() const override { return pool_.size(); }

 protected:
  void copy_rows(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, size_t rows) override;
  void write_from_host(void* device_dst, const void* host_src, size_t bytes) override;
  void read_to_host(void* host_dst, const void* device_src, size_t bytes) override;
  void wait_idle() override {}

 private:
  ThreadPool pool_;
  Target target_;
  OrcLoader loader_;
};

}  // namespace switchyard
