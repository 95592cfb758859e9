// The public cache controls (switchyard/cache.h) over the process's Context.
#include <switchyard/cache.h>

#include <chrono>

#include "cache/disk_cache.h"
#include "runtime/context.h"
#include "runtime/kernel_targets.h"
#include "runtime/model_config.h"

namespace switchyard {

WarmReport warm(const std::string& model_config_path, const WarmOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  ModelConfig config = ModelConfig::load(model_config_path);
  config.training = config.training || options.training;
  const TargetChoice choice = resolve_targets(options.targets);
  WarmReport report;
  report.model = config.name;
  for (const auto& t : choice.targets) report.targets.push_back(t.to_string());
  report.left_out = choice.left_out;
  const std::vector<KernelSpec> specs = plan_kernels(config, choice.targets, report.skipped);
  report.kernels = specs.size();
  obtain_all(specs, options.jobs, [&](size_t, const ObtainResult& result) {
    (result.compiled ? report.compiled : report.cached)++;
    if (options.progress) options.progress(report.compiled + report.cached, specs.size(), result.binary.spec_text);
  });
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

CacheStats cache_stats() {
  cache::DiskCache& disk = Context::global().store().disk();
  CacheStats stats;
  stats.dir = disk.root();
  stats.mode = cache_mode_name(disk.mode());
  stats.writable = disk.writable();
  for (const auto& e : disk.list()) {
    ++stats.entries;
    stats.bytes += e.bytes;
  }
  return stats;
}

size_t export_cache(const std::string& bundle_path) {
  return Context::global().store().disk().export_bundle(bundle_path);
}

size_t import_cache(const std::string& bundle_path) {
  return Context::global().store().disk().import_bundle(bundle_path);
}

}  // namespace switchyard
