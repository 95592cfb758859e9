// Writing safetensors files from sources read a chunk at a time (write_safetensors_streamed, what
// MoeLayer::save uses so that a large layer is written without a copy of it): the bytes of the
// whole-tensor writer whatever the chunk, every byte read once in order, and a failed source or an
// unwritable path leaving nothing behind and an existing file as it was.
#include <gtest/gtest.h>

#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/fs.h"
#include "runtime/safetensors.h"
#include "tests/support/expect_error.h"
#include "tests/support/test_support.h"

namespace switchyard {
namespace {

// Two tensors of 12 and 18 bytes, a scalar of 8 and an empty one; byte i of each is its own.
TensorFile sample_tensors() {
  TensorFile file;
  auto bytes = [](size_t n, char first) {
    std::string out(n, '\0');
    for (size_t i = 0; i < n; ++i) out[i] = static_cast<char>(first + i);
    return out;
  };
  file["a"] = {"F32", {3}, bytes(12, 'a')};
  file["b"] = {"F16", {3, 1, 3}, bytes(18, 'A')};
  file["c"] = {"I64", {}, bytes(8, '0')};
  file["empty"] = {"F32", {0, 4}, ""};
  return file;
}

// Sources over `file`'s bytes that record every read (offset, count) per tensor.
TensorSources sources_of(const TensorFile& file,
                         std::map<std::string, std::vector<std::pair<uint64_t, size_t>>>& reads) {
  TensorSources sources;
  for (const auto& [name, t] : file)
    sources[name] = {t.dtype, t.shape, t.bytes.size(),
                     [&bytes = t.bytes, &log = reads[name]](uint64_t offset, size_t count, char* out) {
                       log.emplace_back(offset, count);
                       std::memcpy(out, bytes.data() + offset, count);
                     }};
  return sources;
}

TEST(SafetensorsWrite, StreamedInAnyChunkTheFileHasTheWholeWritersBytes) {
  testing::TempDir dir;
  const TensorFile file = sample_tensors();
  write_safetensors(dir / "whole.safetensors", file, {{"format", "test"}});
  const std::string whole = fs::read_file(dir / "whole.safetensors");
  for (size_t chunk : {size_t{1}, size_t{7}, size_t{12}, size_t{64} << 20}) {
    SCOPED_TRACE("chunk " + std::to_string(chunk));
    std::map<std::string, std::vector<std::pair<uint64_t, size_t>>> reads;
    write_safetensors_streamed(dir / "streamed.safetensors", sources_of(file, reads), {{"format", "test"}}, chunk);
    EXPECT_EQ(fs::read_file(dir / "streamed.safetensors"), whole);
    for (const auto& [name, t] : file) {
      uint64_t next = 0;  // the reads cover the tensor once, in order, in pieces of at most a chunk
      for (const auto& [offset, count] : reads[name]) {
        EXPECT_EQ(offset, next) << name;
        EXPECT_LE(count, chunk) << name;
        next = offset + count;
      }
      EXPECT_EQ(next, t.bytes.size()) << name;
    }
    const TensorFile back = read_safetensors(dir / "streamed.safetensors");
    ASSERT_EQ(back.size(), file.size());
    for (const auto& [name, t] : file) {
      EXPECT_EQ(back.at(name).bytes, t.bytes) << name;
      EXPECT_EQ(back.at(name).shape, t.shape) << name;
      EXPECT_EQ(back.at(name).dtype, t.dtype) << name;
    }
  }
}

TEST(SafetensorsWrite, AFailedSourceLeavesTheOldFileAndNoTemporary) {
  testing::TempDir dir;
  const std::string path = dir / "layer.safetensors";
  fs::write_file(path, "the old file");
  TensorSources sources = {{"a", {"F32", {4}, 16, [](uint64_t offset, size_t, char*) {
                                    if (offset >= 8) throw std::runtime_error("device lost");
                                  }}}};
  try {
    write_safetensors_streamed(path, sources, {}, 4);
    ADD_FAILURE() << "the source's error did not reach the caller";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "device lost");
  }
  EXPECT_EQ(fs::read_file(path), "the old file");
  EXPECT_EQ(fs::list_directory(dir.path()), std::vector<std::string>{"layer.safetensors"});
}

TEST(SafetensorsWrite, AnUnwritablePathIsNamed) {
  testing::TempDir dir;
  const std::string path = dir / "no/such/dir/layer.safetensors";
  std::map<std::string, std::vector<std::pair<uint64_t, size_t>>> reads;
  const TensorFile file = sample_tensors();
  testing::expect_user_error([&] { write_safetensors_streamed(path, sources_of(file, reads)); }, path);
  testing::expect_user_error([&] { write_safetensors(path, file); }, path);
  EXPECT_FALSE(fs::exists(path));
}

}  // namespace
}  // namespace switchyard
