#include "jit/cpu_target.h"

#include <clang/Basic/Diagnostic.h>
#include <clang/Basic/DiagnosticOptions.h>
#include <clang/Basic/TargetInfo.h>
#include <clang/Basic/TargetOptions.h>
#include <llvm/ADT/StringMap.h>
#include <llvm/TargetParser/Host.h>

#include <algorithm>

#include "core/error.h"
#include "jit/target.h"

namespace switchyard {
namespace {

// NOTE: clang's frontend, not LLVM's backend, decides which -target-cpu names are valid: the
// backend accepts "generic" on x86-64 where clang rejects it ("unknown target CPU").
class ClangTargetInfo {
 public:
  explicit ClangTargetInfo(const std::string& triple)
      : diags_(llvm::makeIntrusiveRefCnt<clang::DiagnosticIDs>(), new clang::DiagnosticOptions(),
               new clang::IgnoringDiagConsumer(), /*ShouldOwnClient=*/true) {
    auto options = std::make_shared<clang::TargetOptions>();
    options->Triple = triple;
    info_ = clang::TargetInfo::CreateTargetInfo(diags_, options);
    if (info_ == nullptr) SY_THROW(BackendError) << "clang has no target for the triple " << triple;
  }

  bool knows(const std::string& cpu) const { return info_->isValidCPUName(cpu); }

  std::vector<std::string> implied_features(const std::string& cpu) {
    llvm::StringMap<bool> map;
    info_->initFeatureMap(map, diags_, cpu, {});
    std::vector<std::string> features;
    for (const auto& entry : map) {
      if (entry.getValue()) features.push_back("+" + entry.getKey().str());
    }
    std::sort(features.begin(), features.end());
    return features;
  }

  std::string some_valid_names() const {
    llvm::SmallVector<llvm::StringRef, 128> names;
    info_->fillValidCPUList(names);
    // The architecture levels first (x86-64-v2 ...): what a fleet's shared cache names.
    std::stable_partition(names.begin(), names.end(), [](llvm::StringRef n) { return n.startswith("x86-64"); });
    std::string text;
    for (size_t i = 0; i < names.size() && i < 24; ++i) text += (i ? ", " : "") + names[i].str();
    return text + (names.size() > 24 ? ", ..." : "");
  }

 private:
  clang::DiagnosticsEngine diags_;
  llvm::IntrusiveRefCntPtr<clang::TargetInfo> info_;
};

std::vector<std::string> enabled_features(const HostCpu& host) {
  std::vector<std::string> features;
  for (const auto& [name, present] : host.features) {
    if (present) features.push_back("+" + name);
  }
  return features;  // std::map keeps them sorted
}

std::string baseline_cpu(const ClangTargetInfo& clang, const std::string& triple) {
  for (const char* candidate : {"x86-64", "generic"}) {
    if (clang.knows(candidate)) return candidate;
  }
  SY_THROW(BackendError) << "the CPU JIT knows no baseline CPU for " << triple
                         << "; set SWITCHYARD_CPU to a CPU name clang accepts";
}

CpuTarget requested_target(ClangTargetInfo& clang, const HostCpu& host, const std::string& requested) {
  SY_CHECK(clang.knows(requested)) << "SWITCHYARD_CPU='" << requested << "' is not a CPU name clang knows for "
                                   << host.triple << "; expected host or one of " << clang.some_valid_names();
  CpuTarget target{host.triple,
                   requested,
                   clang.implied_features(requested),
                   "SWITCHYARD_CPU=" + requested + " (the host is " + host.name + ")",
                   {},
                   true};
  for (const std::string& feature : target.features) {
    auto found = host.features.find(feature.substr(1));
    if (found != host.features.end() && !found->second) target.missing_on_host.push_back(feature);
  }
  return target;
}

}  // namespace

HostCpu HostCpu::detect() {
  HostCpu host;
  host.triple = llvm::sys::getProcessTriple();
  host.name = llvm::sys::getHostCPUName().str();
  llvm::StringMap<bool> features;
  llvm::sys::getHostCPUFeatures(features);
  for (const auto& entry : features) host.features[entry.getKey().str()] = entry.getValue();
  // AMX's tiles run only where Linux grants the process their state (host_cpu_features asks): where
  // it refuses, they are absent from this host, for the kernels compiled here and for a requested
  // CPU's (which then cannot run here).
  if ((host_cpu_features() & kCpuAmxBf16) == 0)
    for (auto& [name, present] : host.features)
      if (name.rfind("amx-", 0) == 0) present = false;
  return host;
}

CpuTarget resolve_cpu_target(const HostCpu& host, const std::string& requested) {
  ClangTargetInfo clang(host.triple);
  if (!requested.empty() && requested != "host") return requested_target(clang, host, requested);
  if (clang.knows(host.name)) return {host.triple, host.name, enabled_features(host), "the host CPU", {}};
  std::string baseline = baseline_cpu(clang, host.triple);
  return {host.triple,
          baseline,
          enabled_features(host),
          "LLVM 16 does not know this CPU (it reports '" + host.name + "'): " + baseline + " with the host's features",
          {}};
}

}  // namespace switchyard
