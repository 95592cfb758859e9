// The process's runtime state: settings (read from the environment once), the kernel store
// (disk cache + compilers), the devices, and the in-memory kernel registry per device:
// memory -> disk -> compile.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>

#include <switchyard/cache_stats.h>
#include <switchyard/device.h>
#include <switchyard/export.h>

namespace switchyard {

// Internal to the library.
struct Settings;
class KernelStore;
struct KernelSpec;

struct SWITCHYARD_API RuntimeCounters {
  uint64_t memory_hits = 0;
  uint64_t loads = 0;  // kernels loaded onto a device (each from disk or a fresh compile)
  StoreCounters store;
};

class SWITCHYARD_API Context {
 public:
  explicit Context(Settings settings);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  /// The process-wide context, created on first use from the environment.
  static Context& global();

  KernelStore& store() { return *store_; }
  const Settings& settings() const { return *settings_; }

  Device& cpu();
  /// CUDA device `ordinal`; throws BackendError saying why when there is none.
  Device& cuda(int ordinal = 0);
  Device& device(const DeviceRef& ref);
  /// The device called `name`: "cpu", "cuda" (ordinal 0) or "cuda:N"; UserError naming anything else.
  Device& device(const std::string& name);
  /// Why CUDA is unavailable, or "" when a device is present.
  static std::string cuda_unavailable_reason();

  /// The loaded kernel for `spec` on `device`: a hash lookup when it was used before.
  const LoadedKernel& kernel(Device& device, const KernelSpec& spec);
  RuntimeCounters counters() const;

 private:
  struct DeviceSlot;  // a device and its loaded kernels (context.cpp)
  DeviceSlot& slot_for(Device& device);

  std::unique_ptr<Settings> settings_;
  std::unique_ptr<KernelStore> store_;
  std::mutex devices_mutex_;
  std::mutex load_mutex_;
  std::shared_mutex kernels_mutex_;
  std::unordered_map<std::string, std::unique_ptr<DeviceSlot>> slots_;
  std::atomic<uint64_t> memory_hits_{0};
  std::atomic<uint64_t> loads_{0};
};

}  // namespace switchyard
