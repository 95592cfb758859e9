#include "runtime/context.h"

#include "core/error.h"
#include "runtime/cpu_device.h"
#include "runtime/cuda_device.h"
#include "runtime/cuda_driver.h"

namespace switchyard {

struct Context::DeviceSlot {
  std::unique_ptr<Device> device;
  std::unordered_map<KernelSpec, std::unique_ptr<LoadedKernel>, KernelSpecHash> kernels;
};

Context::Context(Settings settings)
    : settings_(std::make_unique<Settings>(std::move(settings))), store_(std::make_unique<KernelStore>(*settings_)) {}

Context::~Context() = default;

Context& Context::global() {
  static Context context(Settings::from_environment());
  return context;
}

Context::DeviceSlot& Context::slot_for(Device& device) {
  std::lock_guard<std::mutex> lock(devices_mutex_);
  auto it = slots_.find(device.name());
  SY_INTERNAL_CHECK(it != slots_.end() && it->second->device.get() == &device)
      << "device " << device.name() << " does not belong to this context";
  return *it->second;
}

Device& Context::cpu() {
  std::lock_guard<std::mutex> lock(devices_mutex_);
  auto& slot = slots_["cpu"];
  if (!slot) {
    slot = std::make_unique<DeviceSlot>();
    CpuDeviceOptions options;
    options.threads = settings_->num_threads;
    options.target = store_->cpu_target().kernel_target();
    options.perf_map = settings_->perf_map;
    options.huge_pages = settings_->huge_pages;
    slot->device = std::make_unique<CpuDevice>(options);
  }
  return *slot->device;
}

Device& Context::cuda(int ordinal) {
  std::lock_guard<std::mutex> lock(devices_mutex_);
  auto& slot = slots_["cuda:" + std::to_string(ordinal)];
  if (!slot) {
    auto fresh = std::make_unique<DeviceSlot>();
    fresh->device = std::make_unique<CudaDevice>(ordinal);
    slot = std::move(fresh);
  }
  return *slot->device;
}

Device& Context::device(const DeviceRef& ref) {
  return ref.kind == DeviceRef::Kind::kCpu ? cpu() : cuda(ref.index);
}

Device& Context::device(const std::string& name) {
  if (name == "cpu") return cpu();
  if (name == "cuda") return cuda(0);
  size_t used = 0;
  int ordinal = -1;
  if (name.rfind("cuda:", 0) == 0) {
    try {
      ordinal = std::stoi(name.substr(5), &used);
    } catch (const std::exception&) {
      used = 0;
    }
  }
  SY_CHECK(used > 0 && used == name.size() - 5 && ordinal >= 0)
      << "device \"" << name << "\"; expected cpu, cuda or cuda:N";
  return cuda(ordinal);
}

std::string Context::cuda_unavailable_reason() {
  return CudaDriver::unavailable_reason();
}

const LoadedKernel& Context::kernel(Device& device, const KernelSpec& spec) {
  DeviceSlot& slot = slot_for(device);
  {
    std::shared_lock<std::shared_mutex> read(kernels_mutex_);
    auto it = slot.kernels.find(spec);
    if (it != slot.kernels.end()) {
      memory_hits_.fetch_add(1, std::memory_order_relaxed);
      return *it->second;
    }
  }
  // NOTE: one loader at a time, re-checking after the lock: two threads asking for the same
  // cold kernel compile it once; lookups of loaded kernels never wait for a compile.
  std::lock_guard<std::mutex> loading(load_mutex_);
  {
    std::shared_lock<std::shared_mutex> read(kernels_mutex_);
    auto it = slot.kernels.find(spec);
    if (it != slot.kernels.end()) return *it->second;
  }
  SY_CHECK(spec.target.runs_on(device.target()))
      << "kernel " << spec.to_string() << " targets " << spec.target.to_string() << ", which device " << device.name()
      << " (" << device.target().to_string() << ") cannot run";
  std::string cannot_run = store_->compiler_for(spec.target).why_kernels_cannot_run_here();
  SY_CHECK(cannot_run.empty()) << "cannot run " << spec.to_string() << " on " << device.name() << ": " << cannot_run;
  ObtainResult obtained = store_->obtain(spec);
  std::unique_ptr<LoadedKernel> loaded = device.load(obtained.binary);
  ++loads_;
  std::unique_lock<std::shared_mutex> write(kernels_mutex_);
  auto& stored = slot.kernels[spec];
  stored = std::move(loaded);
  return *stored;
}

RuntimeCounters Context::counters() const {
  RuntimeCounters c;
  c.memory_hits = memory_hits_.load();
  c.loads = loads_.load();
  c.store = store_->counters();
  return c;
}

}  // namespace switchyard
