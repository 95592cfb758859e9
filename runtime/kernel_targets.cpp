#include "runtime/kernel_targets.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "jit/clang_compiler.h"
#include "jit/nvrtc_library.h"
#include "runtime/context.h"
#include "runtime/cuda_driver.h"

namespace switchyard {

namespace {

const char* kNoCpuJit =
    "this build has no CPU JIT (configured with -DSY_WITH_CPU_JIT=OFF; reconfigure with -DSY_WITH_CPU_JIT=ON, "
    "which needs LLVM 16 and clang 16)";

void add_once(std::vector<Target>& targets, const Target& target) {
  if (std::find(targets.begin(), targets.end(), target) == targets.end()) targets.push_back(target);
}

// Why `target` cannot be compiled by this build on this machine, or "".
std::string why_not_compilable(const Target& target) {
  if (target.is_cpu()) return cpu_jit_built() ? "" : kNoCpuJit;
  if (NvrtcLibrary::available()) return "";
  return "NVRTC is not on this machine (looked under $SWITCHYARD_CUDA_HOME, $CUDA_HOME, $CUDA_PATH and "
         "/usr/local/cuda for CUDA 13's lib64/libnvrtc.so.13)";
}

TargetChoice default_targets() {
  TargetChoice choice;
  if (cpu_jit_built())
    choice.targets.push_back(Context::global().cpu().target());
  else
    choice.left_out.push_back(std::string("cpu: ") + kNoCpuJit);
  const std::string nvrtc_missing = why_not_compilable(Target::cuda(80));
  if (!CudaDriver::available()) {
    choice.left_out.push_back("local GPUs: none (" + CudaDriver::unavailable_reason() + ")");
  } else if (!nvrtc_missing.empty()) {
    choice.left_out.push_back("local GPUs: " + nvrtc_missing);
  } else {
    for (int i = 0; i < CudaDriver::get().device_count; ++i)
      add_once(choice.targets, Context::global().cuda(i).target());
  }
  if (choice.targets.empty() && nvrtc_missing.empty()) {
    // NOTE: nothing here can run kernels; warm what a data-center fleet runs, as NVRTC can.
    choice.targets = {Target::cuda(80), Target::cuda(90, true)};
    choice.left_out.push_back(
        "no target of this machine can be compiled: compiling for sm_80 and sm_90a (A100, H100/H200) instead "
        "(choose with --target)");
  }
  SY_CHECK(!choice.targets.empty()) << "this build and machine can compile for no target: " << choice.left_out.front();
  return choice;
}

}  // namespace

TargetChoice resolve_targets(const std::vector<std::string>& texts) {
  if (texts.empty()) return default_targets();
  TargetChoice choice;
  for (const auto& text : texts) {
    Target target = Target::parse(text);
    if (target.is_cpu()) target = Context::global().cpu().target();  // with the compiled-for CPU's vectors
    std::string why = why_not_compilable(target);
    SY_CHECK(why.empty()) << "--target " << text << ": " << why;
    add_once(choice.targets, target);
  }
  return choice;
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

}  // namespace switchyard
