#include "cache/disk_cache.h"

#include "cache/cache_key.h"

#include <cstdio>

#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/log.h"

namespace switchyard::cache {
namespace {

bool is_safe_file_name(const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.size() > 100) return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) return false;
  }
  return true;
}

}  // namespace

bool is_valid_key(const std::string& key) {
  if (key.size() != 32) return false;
  for (char c : key) {
    if (!std::isxdigit(static_cast<unsigned char>(c)) || std::isupper(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

DiskCache::DiskCache(std::string root, CacheMode mode, std::optional<uint64_t> max_bytes)
    : root_(std::move(root)), mode_(mode), max_bytes_(max_bytes) {
  if (mode_ == CacheMode::kOff) return;
  if (root_.empty()) {
    log_warn_once("cache-no-dir",
                  "no cache directory (HOME, XDG_CACHE_HOME and SWITCHYARD_CACHE_DIR are unset); "
                  "kernels are kept in memory only");
    return;
  }
  if (mode_ == CacheMode::kReadWrite) {
    bool ok = fs::make_directories(entries_root()) && fs::make_directories(layout_dir("tmp")) &&
              fs::make_directories(layout_dir("locks")) && fs::is_writable_directory(layout_dir("tmp"));
    writable_ = ok;
    if (!ok) {
      log_warn_once("cache-ro:" + root_, "cache directory '" + root_ +
                                             "' is not writable; using it read-only and keeping new kernels in memory "
                                             "(set SWITCHYARD_CACHE_DIR to a writable directory)");
    }
  }
  readable_ = fs::is_directory(entries_root());
}

std::string DiskCache::layout_dir(const std::string& sub) const {
  return fs::join(root_, "v" + std::to_string(kFormatVersion)) + "/" + sub;
}

std::string DiskCache::entries_root() const {
  return layout_dir("entries");
}

std::string DiskCache::entry_dir(const std::string& key) const {
  return entries_root() + "/" + key.substr(0, 2) + "/" + key;
}

FileLock DiskCache::lock(const std::string& key) const {
  if (!writable_) return FileLock("");
  return FileLock(layout_dir("locks/" + key + ".lock"));
}

std::optional<nlohmann::json> DiskCache::peek_meta(const std::string& key) const {
  std::string text;
  if (!readable_ || !fs::try_read_file(entry_dir(key) + "/meta.json", text)) return std::nullopt;
  auto json = nlohmann::json::parse(text, nullptr, false);
  if (json.is_discarded()) return std::nullopt;
  return json;
}

std::string DiskCache::verify_entry(const std::string& dir, CacheEntry* out) const {
  std::string text;
  if (!fs::try_read_file(dir + "/meta.json", text)) return "meta.json is missing or unreadable";
  auto meta = nlohmann::json::parse(text, nullptr, false);
  if (meta.is_discarded() || !meta.is_object() || !meta.contains("files") || !meta["files"].is_object()) {
    return "meta.json is not valid JSON with a files table";
  }
  for (const auto& [name, info] : meta["files"].items()) {
    std::string bytes;
    if (!is_safe_file_name(name)) return "meta.json names an unsafe file '" + name + "'";
    if (!fs::try_read_file(dir + "/" + name, bytes)) return name + " is missing";
    if (!info.contains("size") || !info.contains("xxh3")) return "meta.json lacks size or checksum for " + name;
    if (bytes.size() != info["size"].get<uint64_t>()) {
      return name + " has " + std::to_string(bytes.size()) + " bytes, expected " +
             std::to_string(info["size"].get<uint64_t>());
    }
    if (hash64_hex(bytes) != info["xxh3"].get<std::string>()) return name + " fails its checksum";
    if (out != nullptr) out->files[name] = std::move(bytes);
  }
  if (out != nullptr) out->meta = std::move(meta);
  return "";
}

std::optional<CacheEntry> DiskCache::load(const std::string& key) {
  if (!readable_) return std::nullopt;
  std::string dir = entry_dir(key);
  if (!fs::is_directory(dir)) return std::nullopt;
  CacheEntry entry;
  entry.key = key;
  std::string problem = verify_entry(dir, &entry);
  if (!problem.empty()) {
    quarantine(key, problem);
    return std::nullopt;
  }
  if (writable_) fs::touch(dir);  // last-used time for LRU pruning
  return entry;
}

void DiskCache::quarantine(const std::string& key, const std::string& reason) {
  ++corrupt_;
  std::string dir = entry_dir(key);
  SY_LOG(kWarn) << "cache entry " << dir << " is corrupt (" << reason << "); recompiling";
  if (!writable_) return;
  std::string aside = layout_dir("quarantine");
  fs::make_directories(aside);
  std::string target = aside + "/" + key + "." + fs::unique_suffix();
  if (std::rename(dir.c_str(), target.c_str()) != 0) fs::remove_tree(dir);
}

void DiskCache::publish(const CacheEntry& entry, bool replace) {
  if (!writable_) return;
  SY_INTERNAL_CHECK(is_valid_key(entry.key)) << "bad cache key '" << entry.key << "'";
  std::string staging = layout_dir("tmp/" + entry.key + "." + fs::unique_suffix());
  try {
    SY_INTERNAL_CHECK(fs::make_directories(staging)) << "cannot create " << staging;
    nlohmann::json meta = entry.meta;
    meta["key"] = entry.key;
    meta["files"] = nlohmann::json::object();
    for (const auto& [name, bytes] : entry.files) {
      SY_INTERNAL_CHECK(is_safe_file_name(name) && name != "meta.json") << "bad artifact name '" << name << "'";
      fs::write_file(staging + "/" + name, bytes, /*sync=*/true);
      meta["files"][name] = {{"size", bytes.size()}, {"xxh3", hash64_hex(bytes)}};
    }
    fs::write_file(staging + "/meta.json", meta.dump(2), /*sync=*/true);
    fs::sync_directory(staging);
    std::string final_dir = entry_dir(entry.key);
    fs::make_directories(entries_root() + "/" + entry.key.substr(0, 2));
    if (fs::is_directory(final_dir) && (replace || !verify_entry(final_dir, nullptr).empty())) {
      std::string old = staging + ".old";
      if (std::rename(final_dir.c_str(), old.c_str()) == 0) fs::remove_tree(old);
    }
    // NOTE: rename of a directory onto an existing non-empty one fails (ENOTEMPTY/EEXIST):
    // another process published the same key first, which is a benign race.
    if (std::rename(staging.c_str(), final_dir.c_str()) != 0) fs::remove_tree(staging);
    fs::sync_directory(entries_root() + "/" + entry.key.substr(0, 2));
  } catch (const Error& e) {
    fs::remove_tree(staging);
    log_warn_once("cache-publish:" + root_, std::string("cannot publish to the kernel cache: ") + e.what());
    return;
  }
  if (max_bytes_ && total_bytes() > *max_bytes_) prune(*max_bytes_);
}

}  // namespace switchyard::cache

namespace switchyard::cache {

void DiskCache::record_label(const std::string& label, const std::string& key) {
  if (!writable_) return;
  std::string dir = layout_dir("labels");
  if (!fs::make_directories(dir)) return;
  std::string path = dir + "/" + hash128_hex(label);
  std::string tmp = path + "." + fs::unique_suffix();
  try {
    fs::write_file(tmp, key);
    if (std::rename(tmp.c_str(), path.c_str()) != 0) fs::remove_tree(tmp);
  } catch (const Error&) {
    fs::remove_tree(tmp);
  }
}

std::optional<std::string> DiskCache::key_for_label(const std::string& label) const {
  std::string key;
  if (!readable_ || !fs::try_read_file(layout_dir("labels/" + hash128_hex(label)), key)) return std::nullopt;
  if (!is_valid_key(key)) return std::nullopt;
  return key;
}

}  // namespace switchyard::cache
