// Export and import of a whole cache as one file, to pre-warm a fleet:
//   "switchyard-cache-bundle 1\n", then per entry one JSON line {"key", "files": [[name, size]]}
//   followed by the raw bytes of those files, and finally the line "end\n".
#include <fstream>

#include "cache/disk_cache.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"

namespace switchyard::cache {
namespace {

constexpr const char* kMagic = "switchyard-cache-bundle 1";

std::string read_exact(std::istream& in, uint64_t size, const std::string& path) {
  SY_CHECK(size < (1ULL << 32)) << "bundle '" << path << "' declares a file of " << size << " bytes; it is corrupt";
  std::string bytes(size, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(size));
  SY_CHECK(static_cast<uint64_t>(in.gcount()) == size) << "bundle '" << path << "' is truncated";
  return bytes;
}

}  // namespace

size_t DiskCache::export_bundle(const std::string& path) const {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  SY_CHECK(out.good()) << "cannot write bundle '" << path << "'";
  out << kMagic << "\n";
  size_t count = 0;
  for (const auto& info : list()) {
    CacheEntry entry;
    if (!verify_entry(entry_dir(info.key), &entry).empty()) continue;  // never export a bad entry
    entry.files["meta.json"] = entry.meta.dump(2);
    nlohmann::json header = {{"key", info.key}, {"files", nlohmann::json::array()}};
    for (const auto& [name, bytes] : entry.files) header["files"].push_back({name, bytes.size()});
    out << header.dump() << "\n";
    for (const auto& [name, bytes] : entry.files) out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    ++count;
  }
  out << "end\n";
  out.flush();
  SY_CHECK(out.good()) << "error while writing bundle '" << path << "'";
  return count;
}

size_t DiskCache::import_bundle(const std::string& path) {
  SY_CHECK(writable_) << "cannot import into cache '" << root_ << "': it is not writable (mode "
                      << cache_mode_name(mode_) << ")";
  std::ifstream in(path, std::ios::binary);
  SY_CHECK(in.good()) << "cannot read bundle '" << path << "'";
  std::string line;
  std::getline(in, line);
  SY_CHECK(line == kMagic) << "'" << path << "' is not a switchyard cache bundle (first line '" << line.substr(0, 40)
                           << "')";
  size_t count = 0;
  while (std::getline(in, line) && line != "end") {
    auto header = nlohmann::json::parse(line, nullptr, false);
    SY_CHECK(!header.is_discarded() && header.contains("key") && header.contains("files"))
        << "bundle '" << path << "' has a malformed entry header";
    CacheEntry entry;
    entry.key = header["key"].get<std::string>();
    SY_CHECK(is_valid_key(entry.key)) << "bundle '" << path << "' has an invalid key '" << entry.key << "'";
    for (const auto& file : header["files"]) {
      entry.files[file.at(0).get<std::string>()] = read_exact(in, file.at(1).get<uint64_t>(), path);
    }
    auto meta = nlohmann::json::parse(entry.files["meta.json"], nullptr, false);
    SY_CHECK(!meta.is_discarded() && meta.contains("files"))
        << "bundle '" << path << "' entry " << entry.key << " has no valid meta.json";
    entry.files.erase("meta.json");
    // Publishing recomputes checksums, so compare with the exported ones first.
    for (const auto& [name, info] : meta["files"].items()) {
      SY_CHECK(entry.files.count(name) && entry.files[name].size() == info["size"].get<uint64_t>() &&
               hash64_hex(entry.files[name]) == info["xxh3"].get<std::string>())
          << "bundle '" << path << "' entry " << entry.key << ": file " << name << " is missing or fails its checksum";
    }
    entry.meta = meta;
    publish(entry);
    SY_CHECK(load(entry.key).has_value()) << "bundle '" << path << "' entry " << entry.key << " failed verification";
    ++count;
  }
  SY_CHECK(line == "end") << "bundle '" << path << "' is truncated (no end marker)";
  return count;
}

}  // namespace switchyard::cache
