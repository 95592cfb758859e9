// switchyard cache stats|list|verify|prune|clear|export|import
#include <iostream>
#include <memory>

#include "core/error.h"
#include "core/settings.h"
#include "runtime/context.h"
#include "switchyard/cache.h"
#include "tools/commands.h"

namespace switchyard::tools {
namespace {

cache::DiskCache& disk() {
  return Context::global().store().disk();
}

void stats(bool json) {
  const CacheStats stats = cache_stats();
  const Settings& s = Context::global().settings();
  nlohmann::json out = {
      {"dir", stats.dir},
      {"mode", stats.mode},
      {"writable", stats.writable},
      {"entries", stats.entries},
      {"bytes", stats.bytes},
      {"max_bytes", s.cache_max_bytes ? nlohmann::json(*s.cache_max_bytes) : nlohmann::json(nullptr)}};
  if (json) {
    std::cout << out.dump(2) << "\n";
    return;
  }
  std::cout << "cache " << stats.dir << " (" << stats.mode << (stats.writable ? "" : ", not writable")
            << "): " << stats.entries << " entries, " << stats.bytes << " bytes";
  if (s.cache_max_bytes) std::cout << ", cap " << *s.cache_max_bytes << " bytes";
  std::cout << "\n";
}

void list(bool json) {
  auto entries = disk().list();
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& e : entries)
      out.push_back({{"key", e.key}, {"spec", e.spec}, {"bytes", e.bytes}, {"last_used_ns", e.last_used_ns}});
    std::cout << out.dump(2) << "\n";
    return;
  }
  for (const auto& e : entries) std::cout << e.key << "  " << e.bytes << "  " << e.spec << "\n";
}

void verify(bool json) {
  cache::VerifyReport report = disk().verify();
  if (json) {
    nlohmann::json bad = nlohmann::json::array();
    for (const auto& [key, reason] : report.bad)
      bad.push_back({{"key", key}, {"path", disk().entry_dir(key)}, {"problem", reason}});
    std::cout << nlohmann::json{{"checked", report.checked}, {"bad", bad}}.dump(2) << "\n";
  } else {
    for (const auto& [key, reason] : report.bad) std::cout << "BAD " << disk().entry_dir(key) << ": " << reason << "\n";
    std::cout << "verified " << report.checked << " entries: " << report.bad.size() << " bad\n";
  }
  if (!report.bad.empty()) exit_code() = 1;
}

}  // namespace

void add_cache_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("cache", "Inspect and manage the kernel cache");
  cmd->require_subcommand(1);
  auto json = std::make_shared<bool>(false);
  auto max_bytes = std::make_shared<std::string>();
  auto file = std::make_shared<std::string>();
  cmd->add_subcommand("stats", "Entry count and size")->callback([json] { stats(*json); })->add_flag("--json", *json);
  cmd->add_subcommand("list", "Every entry: key, size, spec")
      ->callback([json] { list(*json); })
      ->add_flag("--json", *json);
  cmd->add_subcommand("verify", "Check every entry's checksums; exit 1 when one is bad")
      ->callback([json] { verify(*json); })
      ->add_flag("--json", *json);
  auto* prune = cmd->add_subcommand("prune", "Evict least recently used entries down to a size");
  prune->add_option("--max-bytes", *max_bytes, "Size to keep (bytes; K, M, G suffixes)")->required();
  prune->add_flag("--json", *json);
  prune->callback([json, max_bytes] {
    auto report = disk().prune(parse_byte_size(*max_bytes, "--max-bytes"));
    if (*json) {
      std::cout << nlohmann::json{{"removed", report.removed},
                                  {"bytes_before", report.bytes_before},
                                  {"bytes_after", report.bytes_after}}
                       .dump(2)
                << "\n";
    } else {
      std::cout << "removed " << report.removed << " entries: " << report.bytes_before << " -> " << report.bytes_after
                << " bytes\n";
    }
  });
  cmd->add_subcommand("clear", "Remove every entry")->callback([] {
    SY_CHECK(disk().writable()) << "cache '" << disk().root() << "' is not writable";
    disk().clear();
    std::cout << "cleared " << disk().root() << "\n";
  });
  auto* exp = cmd->add_subcommand("export", "Write every entry into one bundle file");
  exp->add_option("file", *file, "Bundle path")->required();
  exp->callback([file] { std::cout << "exported " << export_cache(*file) << " entries to " << *file << "\n"; });
  auto* imp = cmd->add_subcommand("import", "Publish every entry of a bundle into this cache");
  imp->add_option("file", *file, "Bundle path")->required();
  imp->callback([file] { std::cout << "imported " << import_cache(*file) << " entries from " << *file << "\n"; });
}

}  // namespace switchyard::tools
