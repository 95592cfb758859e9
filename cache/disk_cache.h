// The on-disk kernel cache. One directory per key under sharded folders:
//   <root>/v1/entries/<key[0:2]>/<key>/{artifacts..., source, meta.json}
// Entries are published atomically (temp dir, fsync, rename) and verified on every read; a bad
// entry is moved to <root>/v1/quarantine and reported as a miss, never fatal.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cache/file_lock.h"
#include "core/settings.h"

namespace switchyard::cache {

struct CacheEntry {
  std::string key;
  std::map<std::string, std::string> files;  // name -> bytes (artifacts and source)
  nlohmann::json meta;                       // free-form; "files" checksums are added on publish
};

struct EntryInfo {
  std::string key;
  std::string spec;  // meta["spec"] when present
  uint64_t bytes = 0;
  int64_t last_used_ns = 0;
};

struct VerifyReport {
  size_t checked = 0;
  std::vector<std::pair<std::string, std::string>> bad;  // key, reason
};

struct PruneReport {
  size_t removed = 0;
  uint64_t bytes_before = 0;
  uint64_t bytes_after = 0;
};

class DiskCache {
 public:
  /// Opens (and creates, in rw mode) the cache at `root`. An unusable directory is not an
  /// error: the cache warns once and becomes read-only or off.
  DiskCache(std::string root, CacheMode mode, std::optional<uint64_t> max_bytes = std::nullopt);

  bool readable() const { return readable_; }
  bool writable() const { return writable_; }
  const std::string& root() const { return root_; }
  CacheMode mode() const { return mode_; }

  /// The verified entry, or nullopt on a miss. A corrupt entry is quarantined, counted, and
  /// reported with a warning naming its path; the caller recompiles.
  std::optional<CacheEntry> load(const std::string& key);
  /// Publishes atomically; a concurrent publisher of the same key wins harmlessly. No-op when
  /// not writable. Enforces the size cap afterwards.
  void publish(const CacheEntry& entry, bool replace = false);
  /// Remembers that `label` (a spec's text) last resolved to `key`, and looks it up again;
  /// this is what explains a miss ("the compiler changed") without scanning the cache.
  void record_label(const std::string& label, const std::string& key);
  std::optional<std::string> key_for_label(const std::string& label) const;
  /// Exclusive per-key lock for compile-once across processes.
  FileLock lock(const std::string& key) const;
  /// meta.json of an entry without verifying artifacts (for explaining misses); nullopt if absent.
  std::optional<nlohmann::json> peek_meta(const std::string& key) const;

  std::vector<EntryInfo> list() const;
  VerifyReport verify();
  PruneReport prune(uint64_t max_bytes);
  void clear();
  uint64_t total_bytes() const;
  uint64_t corrupt_count() const { return corrupt_.load(); }

  /// Writes every entry into one bundle file; returns the entry count.
  size_t export_bundle(const std::string& path) const;
  /// Publishes every entry of a bundle (checksums verified); returns the entry count.
  size_t import_bundle(const std::string& path);

  std::string entry_dir(const std::string& key) const;

 private:
  std::string entries_root() const;
  /// <root>/v<format>/<sub>: every folder of the cache lives under the format's folder.
  std::string layout_dir(const std::string& sub) const;
  std::string verify_entry(const std::string& dir, CacheEntry* out) const;  // "" when good
  void quarantine(const std::string& key, const std::string& reason);

  std::string root_;
  CacheMode mode_;
  std::optional<uint64_t> max_bytes_;
  bool readable_ = false;
  bool writable_ = false;
  std::atomic<uint64_t> corrupt_{0};
};

/// True for a 32-hex-digit key (guards paths built from bundle contents).
bool is_valid_key(const std::string& key);

}  // namespace switchyard::cache
