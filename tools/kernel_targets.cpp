#include "tools/kernel_targets.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>

#include "runtime/context.h"
#include "runtime/cuda_driver.h"

namespace switchyard::tools {

std::vector<Target> resolve_targets(const std::vector<std::string>& texts) {
  std::vector<Target> targets;
  for (const auto& text : texts) {
    Target t = Target::parse(text);
    if (std::find(targets.begin(), targets.end(), t) == targets.end()) targets.push_back(t);
  }
  if (targets.empty()) {
    targets.push_back(Target::cpu());
    if (CudaDriver::available()) targets.push_back(Context::global().cuda(0).target());
  }
  return targets;
}

std::vector<KernelSpec> plan_kernels(const ModelConfig& config, const std::vector<Target>& targets,
                                     std::vector<std::string>& skipped) {
  std::vector<KernelSpec> specs;
  for (const auto& target : targets) {
    KernelSet set = kernel_set(config, target);
    specs.insert(specs.end(), set.specs.begin(), set.specs.end());
    skipped.insert(skipped.end(), set.skipped.begin(), set.skipped.end());
  }
  return specs;
}

void obtain_all(const std::vector<KernelSpec>& specs, unsigned jobs,
                const std::function<void(size_t, const ObtainResult&)>& done) {
  KernelStore& store = Context::global().store();
  std::atomic<size_t> next{0};
  std::mutex mutex;
  std::exception_ptr error;
  auto worker = [&] {
    for (size_t i = next++; i < specs.size(); i = next++) {
      try {
        ObtainResult result = store.obtain(specs[i]);
        std::lock_guard<std::mutex> lock(mutex);
        done(i, result);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex);
        if (!error) error = std::current_exception();
        next = specs.size();
      }
    }
  };
  std::vector<std::thread> threads;
  for (unsigned t = 1; t < std::max(1u, jobs); ++t) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace switchyard::tools
