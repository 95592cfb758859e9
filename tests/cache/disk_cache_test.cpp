// DiskCache on its own: publish and load, corruption, LRU pruning, bundles, read-only modes.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <thread>

#include "cache/cache_key.h"
#include "cache/disk_cache.h"
#include "core/error.h"
#include "core/fs.h"
#include "tests/support/test_support.h"

namespace switchyard::cache {
namespace {

using switchyard::testing::TempDir;

CacheEntry make_entry(const std::string& seed, size_t size = 1000) {
  KeyParts parts;
  parts.add("spec", seed);
  CacheEntry entry;
  entry.key = parts.key();
  std::string artifact(size, '\0');
  for (size_t i = 0; i < size; ++i) artifact[i] = static_cast<char>((i * 31 + seed.size()) % 251);
  entry.files["kernel.o"] = artifact;
  entry.files["kernel.cpp"] = "// source of " + seed;
  entry.meta = {{"spec", seed}};
  return entry;
}

TEST(DiskCache, PublishThenLoadRoundTrips) {
  TempDir dir;
  DiskCache cache(dir.path(), CacheMode::kReadWrite);
  ASSERT_TRUE(cache.writable());
  CacheEntry entry = make_entry("a");
  EXPECT_FALSE(cache.load(entry.key).has_value());
  cache.publish(entry);
  auto loaded = cache.load(entry.key);
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->files, entry.files);
  EXPECT_EQ(loaded->meta["spec"], "a");
  // Sharded layout: <root>/v1/entries/<first two hex digits>/<key>.
  EXPECT_TRUE(fs::is_directory(dir.path() + "/v1/entries/" + entry.key.substr(0, 2) + "/" + entry.key));
}

TEST(DiskCache, TruncatedAndFlippedArtifactsAreQuarantined) {
  TempDir dir;
  DiskCache cache(dir.path(), CacheMode::kReadWrite);
  CacheEntry truncated = make_entry("truncated");
  CacheEntry flipped = make_entry("flipped");
  cache.publish(truncated);
  cache.publish(flipped);
  std::string path = cache.entry_dir(truncated.key) + "/kernel.o";
  ASSERT_EQ(::truncate(path.c_str(), 100), 0);
  std::string flip_path = cache.entry_dir(flipped.key) + "/kernel.o";
  std::string bytes = fs::read_file(flip_path);
  bytes[500] ^= 0x01;
  fs::write_file(flip_path, bytes);

  VerifyReport report = cache.verify();
  ASSERT_EQ(report.bad.size(), 2u);
  EXPECT_EQ(report.checked, 2u);
  EXPECT_FALSE(cache.load(truncated.key).has_value());
  EXPECT_FALSE(cache.load(flipped.key).has_value());
  EXPECT_EQ(cache.corrupt_count(), 2u);
  EXPECT_FALSE(fs::exists(cache.entry_dir(flipped.key))) << "a bad entry is moved aside";
  cache.publish(flipped);  // the recompiled kernel takes its place
  EXPECT_TRUE(cache.load(flipped.key).has_value());
}

TEST(DiskCache, PruneKeepsMostRecentlyUsed) {
  TempDir dir;
  DiskCache cache(dir.path(), CacheMode::kReadWrite);
  std::vector<CacheEntry> entries;
  for (int i = 0; i < 6; ++i) {
    entries.push_back(make_entry("entry" + std::to_string(i), 10000));
    cache.publish(entries.back());
    std::this_thread::sleep_for(std::chrono::milliseconds(15));
  }
  // Use the two oldest again: they become the most recent.
  cache.load(entries[0].key);
  std::this_thread::sleep_for(std::chrono::milliseconds(15));
  cache.load(entries[1].key);
  uint64_t per_entry = cache.total_bytes() / 6;
  PruneReport report = cache.prune(per_entry * 3 + per_entry / 2);
  EXPECT_EQ(report.removed, 3u);
  EXPECT_TRUE(cache.load(entries[0].key).has_value());
  EXPECT_TRUE(cache.load(entries[1].key).has_value());
  EXPECT_TRUE(cache.load(entries[5].key).has_value());
  EXPECT_FALSE(cache.load(entries[2].key).has_value());
  EXPECT_FALSE(cache.load(entries[3].key).has_value());
  EXPECT_FALSE(cache.load(entries[4].key).has_value());
}

TEST(DiskCache, SizeCapIsEnforcedOnPublish) {
  TempDir dir;
  DiskCache cache(dir.path(), CacheMode::kReadWrite, 25000);
  for (int i = 0; i < 5; ++i) cache.publish(make_entry("capped" + std::to_string(i), 10000));
  EXPECT_LE(cache.total_bytes(), 25000u);
  EXPECT_GE(cache.list().size(), 1u);
}

TEST(DiskCache, ExportThenImportGivesTheSameEntries) {
  TempDir a, b, bundle_dir;
  DiskCache source(a.path(), CacheMode::kReadWrite);
  for (int i = 0; i < 3; ++i) source.publish(make_entry("bundle" + std::to_string(i)));
  std::string bundle = bundle_dir / "cache.bundle";
  EXPECT_EQ(source.export_bundle(bundle), 3u);
  DiskCache target(b.path(), CacheMode::kReadWrite);
  EXPECT_EQ(target.import_bundle(bundle), 3u);
  for (int i = 0; i < 3; ++i) {
    CacheEntry e = make_entry("bundle" + std::to_string(i));
    auto loaded = target.load(e.key);
    ASSERT_TRUE(loaded.has_value());
    EXPECT_EQ(loaded->files, e.files);
  }
}

TEST(DiskCache, CorruptBundlesAreRejected) {
  TempDir a, b, bundle_dir;
  DiskCache source(a.path(), CacheMode::kReadWrite);
  source.publish(make_entry("x"));
  std::string bundle = bundle_dir / "cache.bundle";
  source.export_bundle(bundle);
  std::string bytes = fs::read_file(bundle);
  DiskCache target(b.path(), CacheMode::kReadWrite);

  fs::write_file(bundle_dir / "truncated", bytes.substr(0, bytes.size() - 200));
  EXPECT_THROW(target.import_bundle(bundle_dir / "truncated"), UserError);
  std::string flipped = bytes;
  flipped[flipped.size() - 300] ^= 0x10;  // inside the artifact bytes
  fs::write_file(bundle_dir / "flipped", flipped);
  EXPECT_THROW(target.import_bundle(bundle_dir / "flipped"), UserError);
  fs::write_file(bundle_dir / "garbage", "not a bundle\n");
  EXPECT_THROW(target.import_bundle(bundle_dir / "garbage"), UserError);
  EXPECT_TRUE(target.list().empty()) << "nothing from a bad bundle is published";
}

TEST(DiskCache, ReadOnlyModeNeverWrites) {
  TempDir dir;
  CacheEntry entry = make_entry("ro");
  DiskCache(dir.path(), CacheMode::kReadWrite).publish(entry);
  DiskCache ro(dir.path(), CacheMode::kReadOnly);
  EXPECT_FALSE(ro.writable());
  EXPECT_TRUE(ro.load(entry.key).has_value());
  CacheEntry other = make_entry("other");
  ro.publish(other);
  EXPECT_FALSE(DiskCache(dir.path(), CacheMode::kReadWrite).load(other.key).has_value());
}

TEST(DiskCache, UnusableDirectoryDegradesToMemoryOnly) {
  TempDir dir;
  fs::write_file(dir / "a-file", "x");
  DiskCache cache(dir / "a-file/cache", CacheMode::kReadWrite);  // cannot exist: parent is a file
  EXPECT_FALSE(cache.writable());
  EXPECT_FALSE(cache.readable());
  CacheEntry entry = make_entry("nowhere");
  cache.publish(entry);  // a warning, not an error
  EXPECT_FALSE(cache.load(entry.key).has_value());
  DiskCache no_dir("", CacheMode::kReadWrite);
  EXPECT_FALSE(no_dir.writable());
  if (::geteuid() != 0) {  // root ignores directory permissions
    ::mkdir((dir / "locked").c_str(), 0555);
    EXPECT_FALSE(DiskCache(dir / "locked", CacheMode::kReadWrite).writable());
  }
}

TEST(CacheKey, EveryPartMattersAndDifferencesAreNamed) {
  KeyParts a;
  a.add("spec", "s");
  a.add("header:switchyard/cpu/x.hpp", std::string(1000, 'h'));
  a.add("compiler", "clang-16");
  std::string header(1000, 'h');
  header[999] = 'i';  // one byte of a template header
  KeyParts b;
  b.add("spec", "s");
  b.add("header:switchyard/cpu/x.hpp", header);
  b.add("compiler", "clang-16");
  EXPECT_NE(a.key(), b.key());
  EXPECT_EQ(KeyParts::differences(a, b), std::vector<std::string>{"header:switchyard/cpu/x.hpp"});
  KeyParts c = a;
  c.parts[2].second = "clang-17";
  EXPECT_NE(a.key(), c.key());
  EXPECT_EQ(a.key(), KeyParts::from_json(a.to_json()).key());
  EXPECT_TRUE(is_valid_key(a.key()));
}

}  // namespace
}  // namespace switchyard::cache
