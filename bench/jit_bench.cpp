// JIT pipeline benchmark for a model config (default examples/models/tiny.json), printing JSON:
// cold compile per kernel and target, disk-hit load, in-memory lookup, and process start to
// first launch with a warm cache. Baselines measured in the same run give the ratios.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <iostream>
#include <unordered_map>

#include "core/fs.h"
#include "jit/kernels/dispatch.h"
#include "runtime/context.h"
#include "runtime/model_config.h"

using namespace switchyard;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

Settings settings_for(const std::string& dir) {
  Settings s = Settings::from_environment();
  s.cache_dir = dir;
  s.cache_mode = CacheMode::kReadWrite;
  s.force_compile = false;
  s.dump_dir.clear();
  return s;
}

nlohmann::json cold_compiles(const ModelConfig& config, const std::string& cache_dir) {
  Context context(settings_for(cache_dir));
  nlohmann::json out = nlohmann::json::object();
  for (const char* target : {"cpu", "sm_80", "sm_90"}) {
    std::vector<double> times;
    nlohmann::json kernels = nlohmann::json::array();
    for (const auto& spec : kernel_set(config, Target::parse(target)).specs) {
      auto start = Clock::now();
      context.store().obtain(spec);
      times.push_back(ms_since(start));
      kernels.push_back({{"spec", spec.to_string()}, {"ms", times.back()}});
    }
    out[target] = {
        {"kernels", kernels}, {"median_ms", median(times)}, {"max_ms", *std::max_element(times.begin(), times.end())}};
  }
  return out;
}

nlohmann::json disk_hits(const ModelConfig& config, const std::string& cache_dir) {
  Context context(settings_for(cache_dir));  // a fresh registry: nothing in memory
  std::vector<double> read_ms, load_ms;
  for (const auto& spec : kernel_set(config, Context::global().cpu().target()).specs) {
    auto start = Clock::now();
    context.kernel(context.cpu(), spec);  // disk read + verify + ORC link
    load_ms.push_back(ms_since(start));
  }
  for (const auto& spec : kernel_set(config, Target::cuda(90)).specs) {
    auto start = Clock::now();
    context.store().obtain(spec);  // disk read + verify (no device to load onto here)
    read_ms.push_back(ms_since(start));
  }
  return {{"cpu_load_median_ms", median(load_ms)},
          {"sm_90_read_median_ms", median(read_ms)},
          {"compiles", context.counters().store.compiles}};
}

nlohmann::json memory_hits(const ModelConfig& config, const std::string& cache_dir) {
  Context context(settings_for(cache_dir));
  auto specs = kernel_set(config, Context::global().cpu().target()).specs;
  for (const auto& spec : specs) context.kernel(context.cpu(), spec);
  const int rounds = 200000;
  auto start = Clock::now();
  for (int i = 0; i < rounds; ++i) context.kernel(context.cpu(), specs[i % specs.size()]);
  double lookup_ns = ms_since(start) * 1e6 / rounds;
  // Baseline: the same number of lookups in an unordered_map keyed by the spec's text.
  std::unordered_map<std::string, int> by_text;
  for (size_t i = 0; i < specs.size(); ++i) by_text[specs[i].to_string()] = static_cast<int>(i);
  long sum = 0;
  start = Clock::now();
  for (int i = 0; i < rounds; ++i) sum += by_text.find(specs[i % specs.size()].to_string())->second;
  double text_ns = ms_since(start) * 1e6 / rounds;
  return {{"lookup_ns", lookup_ns},
          {"baseline_text_key_ns", text_ns + static_cast<double>(sum % 2) * 0},
          {"ratio", lookup_ns / text_ns}};
}

nlohmann::json first_launch(const std::string& helper, const std::string& cache_dir) {
  std::vector<double> times;
  long compiles = -1;
  for (int i = 0; i < 5; ++i) {
    timespec before{};
    clock_gettime(CLOCK_REALTIME, &before);
    std::string command = "SWITCHYARD_CACHE_DIR='" + cache_dir + "' '" + helper + "'";
    FILE* pipe = popen(command.c_str(), "r");
    long long finished = 0;
    if (pipe == nullptr || fscanf(pipe, "%lld %ld", &finished, &compiles) != 2) return {{"error", "helper failed"}};
    pclose(pipe);
    times.push_back(static_cast<double>(finished - (before.tv_sec * 1000000000LL + before.tv_nsec)) / 1e6);
  }
  return {{"median_ms", median(times)}, {"compiles_in_child", compiles}};
}

}  // namespace

int main(int argc, char** argv) {
  std::string model = argc > 1 ? argv[1] : std::string(SY_SOURCE_DIR) + "/examples/models/tiny.json";
  std::string helper = std::string(SY_BINARY_DIR) + "/first_launch";
  ModelConfig config = ModelConfig::load(model);
  std::string cache_dir = "/tmp/switchyard-jit-bench-" + fs::unique_suffix();
  nlohmann::json result;
  result["model"] = config.name;
  result["cold_compile"] = cold_compiles(config, cache_dir);
  result["disk_hit"] = disk_hits(config, cache_dir);
  result["memory_hit"] = memory_hits(config, cache_dir);
  // Same shape as tiny.json's first kernel: warm it, then time fresh processes.
  result["start_to_first_launch_warm"] = first_launch(helper, cache_dir);
  double cold = result["cold_compile"]["cpu"]["median_ms"].get<double>();
  result["ratios"] = {{"cpu_cold_over_disk_hit", cold / result["disk_hit"]["cpu_load_median_ms"].get<double>()}};
  fs::remove_tree(cache_dir);
  std::cout << result.dump(2) << "\n";
  return 0;
}
