// switchyard warm MODEL.json [--target T]... [--jobs N] [--json]
// switchyard dump MODEL.json --out DIR [--target T]...
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <memory>

#include "core/error.h"
#include "core/fs.h"
#include "jit/dump.h"
#include "runtime/context.h"
#include "tools/commands.h"
#include "tools/kernel_targets.h"

namespace switchyard::tools {
namespace {

struct WarmOptions {
  std::string model;
  bool training = false;  // also the backward kernels (overrides the config's "training")
  std::vector<std::string> targets;
  unsigned jobs = 1;
  bool json = false;
};

std::string target_list(const std::vector<Target>& targets) {
  std::string text;
  for (const auto& t : targets) text += (text.empty() ? "" : ", ") + t.to_string();
  return text;
}

void run_warm(const WarmOptions& options) {
  auto start = std::chrono::steady_clock::now();
  ModelConfig config = ModelConfig::load(options.model);
  config.training = config.training || options.training;
  TargetChoice choice = resolve_targets(options.targets);
  const std::vector<Target>& targets = choice.targets;
  std::vector<std::string> skipped;
  std::vector<KernelSpec> specs = plan_kernels(config, targets, skipped);
  size_t compiled = 0, cached = 0;
  bool tty = ::isatty(STDERR_FILENO) && !options.json;
  obtain_all(specs, options.jobs, [&](size_t, const ObtainResult& result) {
    (result.compiled ? compiled : cached)++;
    if (tty)
      std::cerr << "\r[" << compiled + cached << "/" << specs.size() << "] " << result.binary.spec_text << "\x1b[K"
                << std::flush;
  });
  if (tty) std::cerr << "\r\x1b[K";
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (options.json) {
    nlohmann::json out = {{"model", config.name},    {"targets", nlohmann::json::array()},
                          {"kernels", specs.size()}, {"compiled", compiled},
                          {"cached", cached},        {"seconds", seconds},
                          {"skipped", skipped},      {"left_out", choice.left_out}};
    for (const auto& t : targets) out["targets"].push_back(t.to_string());
    std::cout << out.dump(2) << "\n";
    return;
  }
  for (const auto& s : choice.left_out) std::cout << "left out " << s << "\n";
  for (const auto& s : skipped) std::cout << "skipped " << s << "\n";
  std::cout << "warmed " << specs.size() << " kernels of " << config.name << " for " << target_list(targets) << ": "
            << compiled << " compiled, " << cached << " already cached (" << seconds << " s)\n";
}

struct DumpOptions {
  std::string model;
  bool training = false;  // also the backward kernels (overrides the config's "training")
  std::string out;
  std::vector<std::string> targets;
};

void run_dump(const DumpOptions& options) {
  ModelConfig config = ModelConfig::load(options.model);
  config.training = config.training || options.training;
  TargetChoice choice = resolve_targets(options.targets);
  const std::vector<Target>& targets = choice.targets;
  std::vector<std::string> skipped;
  std::vector<KernelSpec> specs = plan_kernels(config, targets, skipped);
  SY_CHECK(fs::make_directories(options.out) && fs::is_writable_directory(options.out))
      << "cannot write the dump directory '" << options.out << "'";
  nlohmann::json manifest = {
      {"model", config.name}, {"targets", nlohmann::json::array()}, {"kernels", nlohmann::json::array()}};
  for (const auto& t : targets) manifest["targets"].push_back(t.to_string());
  std::vector<nlohmann::json> items(specs.size());
  obtain_all(specs, 1, [&](size_t i, const ObtainResult& result) {
    items[i] = dump_kernel(options.out, specs[i], result.key, result.binary, result.source);
    items[i]["cached"] = !result.compiled;
  });
  for (auto& item : items) manifest["kernels"].push_back(std::move(item));
  manifest["skipped"] = skipped;
  manifest["left_out"] = choice.left_out;
  for (const auto& s : choice.left_out) std::cout << "left out " << s << "\n";
  fs::write_file(fs::join(options.out, "manifest.json"), manifest.dump(2));
  std::cout << "dumped " << specs.size() << " kernels of " << config.name << " for " << target_list(targets) << " to "
            << options.out << "\n";
}

}  // namespace

void add_warm_command(CLI::App& app) {
  auto options = std::make_shared<WarmOptions>();
  auto* cmd = app.add_subcommand("warm", "Compile every kernel a model config can request into the cache");
  cmd->add_option("model", options->model, "Model config (JSON)")->required();
  cmd->add_option("--target", options->targets,
                  "cpu or sm_XX; repeatable (default: what this build and machine can compile)");
  cmd->add_option("--jobs,-j", options->jobs, "Parallel compiles")->check(CLI::Range(1u, 256u));
  cmd->add_flag("--json", options->json, "Print a JSON summary");
  cmd->add_flag("--training", options->training, "Also the backward and SGD kernels (as \"training\": true)");
  cmd->callback([options] { run_warm(*options); });
}

void add_dump_command(CLI::App& app) {
  auto options = std::make_shared<DumpOptions>();
  auto* cmd = app.add_subcommand("dump", "Write every kernel's source and binaries, plus manifest.json");
  cmd->add_option("model", options->model, "Model config (JSON)")->required();
  cmd->add_option("--out", options->out, "Output directory")->required();
  cmd->add_flag("--training", options->training, "Also the backward and SGD kernels (as \"training\": true)");
  cmd->add_option("--target", options->targets,
                  "cpu or sm_XX; repeatable (default: what this build and machine can compile)");
  cmd->callback([options] { run_dump(*options); });
}

}  // namespace switchyard::tools
