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
#include "runtime/kernel_targets.h"
#include "switchyard/cache.h"
#include "tools/commands.h"

namespace switchyard::tools {
namespace {

// The warm command's flags (the library's WarmOptions plus the file and the output form).
struct WarmCommand {
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

void run_warm(const WarmCommand& command) {
  const bool tty = ::isatty(STDERR_FILENO) && !command.json;
  WarmOptions options;
  options.targets = command.targets;
  options.training = command.training;
  options.jobs = command.jobs;
  if (tty)
    options.progress = [](size_t done, size_t total, const std::string& spec) {
      std::cerr << "\r[" << done << "/" << total << "] " << spec << "\x1b[K" << std::flush;
    };
  const WarmReport report = warm(command.model, options);
  if (tty) std::cerr << "\r\x1b[K";
  if (command.json) {
    nlohmann::json out = {{"model", report.model},       {"targets", report.targets},  {"kernels", report.kernels},
                          {"compiled", report.compiled}, {"cached", report.cached},    {"seconds", report.seconds},
                          {"skipped", report.skipped},   {"left_out", report.left_out}};
    std::cout << out.dump(2) << "\n";
    return;
  }
  for (const auto& s : report.left_out) std::cout << "left out " << s << "\n";
  for (const auto& s : report.skipped) std::cout << "skipped " << s << "\n";
  std::string targets;
  for (const auto& t : report.targets) targets += (targets.empty() ? "" : ", ") + t;
  std::cout << "warmed " << report.kernels << " kernels of " << report.model << " for " << targets << ": "
            << report.compiled << " compiled, " << report.cached << " already cached (" << report.seconds << " s)\n";
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
  auto options = std::make_shared<WarmCommand>();
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
