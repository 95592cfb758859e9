// Listing, verification, LRU pruning and clearing of a DiskCache.
#include <algorithm>
#include <cstdio>

#include "cache/disk_cache.h"
#include "core/fs.h"

namespace switchyard::cache {

std::vector<EntryInfo> DiskCache::list() const {
  std::vector<EntryInfo> entries;
  if (!readable_) return entries;
  for (const auto& shard : fs::list_directory(entries_root())) {
    std::string shard_dir = entries_root() + "/" + shard;
    for (const auto& key : fs::list_directory(shard_dir)) {
      if (!is_valid_key(key)) continue;
      EntryInfo info;
      info.key = key;
      std::string dir = shard_dir + "/" + key;
      info.bytes = fs::tree_size(dir);
      info.last_used_ns = fs::modified_ns(dir);
      if (auto meta = peek_meta(key); meta && meta->contains("spec")) info.spec = (*meta)["spec"].get<std::string>();
      entries.push_back(std::move(info));
    }
  }
  return entries;
}

VerifyReport DiskCache::verify() {
  VerifyReport report;
  for (const auto& info : list()) {
    ++report.checked;
    std::string problem = verify_entry(entry_dir(info.key), nullptr);
    if (!problem.empty()) report.bad.emplace_back(info.key, problem);
  }
  return report;
}

PruneReport DiskCache::prune(uint64_t max_bytes) {
  PruneReport report;
  std::vector<EntryInfo> entries = list();
  for (const auto& e : entries) report.bytes_before += e.bytes;
  report.bytes_after = report.bytes_before;
  if (!writable_) return report;
  // Oldest last-use first.
  std::sort(entries.begin(), entries.end(),
            [](const EntryInfo& a, const EntryInfo& b) { return a.last_used_ns < b.last_used_ns; });
  for (const auto& e : entries) {
    if (report.bytes_after <= max_bytes) break;
    // NOTE: rename first so a reader never sees a half-deleted entry.
    std::string doomed = layout_dir("tmp/" + e.key + ".prune." + fs::unique_suffix());
    if (std::rename(entry_dir(e.key).c_str(), doomed.c_str()) != 0) continue;
    fs::remove_tree(doomed);
    report.bytes_after -= e.bytes;
    ++report.removed;
  }
  return report;
}

void DiskCache::clear() {
  if (!writable_) return;
  for (const auto& e : list()) {
    std::string doomed = layout_dir("tmp/" + e.key + ".clear." + fs::unique_suffix());
    if (std::rename(entry_dir(e.key).c_str(), doomed.c_str()) == 0) fs::remove_tree(doomed);
  }
  fs::remove_tree(layout_dir("quarantine"));
}

uint64_t DiskCache::total_bytes() const {
  uint64_t total = 0;
  for (const auto& e : list()) total += e.bytes;
  return total;
}

}  // namespace switchyard::cache
