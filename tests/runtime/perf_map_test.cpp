// SWITCHYARD_PERF_MAP: each CPU kernel's functions are named in perf's map of the process
// (/tmp/perf-<pid>.map, "start size name" in hex), at addresses where the kernel really runs; off
// by default; a bad value of the variable is a clear error.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/settings.h"
#include "jit/source.h"
#include "runtime/context.h"
#include "runtime/init_ops.h"
#include "runtime/orc_loader.h"
#include "tests/support/test_support.h"

namespace switchyard {
namespace {

struct MapLine {
  uint64_t start = 0;
  uint64_t size = 0;
  std::string name;
};

std::vector<MapLine> read_perf_map() {
  std::vector<MapLine> lines;
  std::ifstream in(perf_map_path());
  std::string text;
  while (std::getline(in, text)) {
    std::istringstream fields(text);
    MapLine line;
    fields >> std::hex >> line.start >> line.size;
    std::getline(fields >> std::ws, line.name);
    lines.push_back(line);
  }
  return lines;
}

// Whether [start, start + size) lies in one executable mapping of this process.
bool in_executable_memory(uint64_t start, uint64_t size) {
  std::ifstream maps("/proc/self/maps");
  std::string text;
  while (std::getline(maps, text)) {
    std::istringstream fields(text);
    uint64_t low = 0, high = 0;
    char dash = 0;
    std::string permissions;
    fields >> std::hex >> low >> dash >> high >> permissions;
    if (start >= low && start + size <= high) return permissions.size() > 2 && permissions[2] == 'x';
  }
  return false;
}

// Draws 64 floats through `context` (loading the CPU init_random kernel).
std::vector<float> draw(Context& context) {
  std::vector<float> out(64);
  fill_random(context, Tensor(out.data(), DType::kFloat32, {64}), {.seed = 5, .name = "w"});
  return out;
}

TEST(PerfMap, CpuKernelsAreNamedWhereTheyRunOnlyWhenAsked) {
  if (std::getenv("SWITCHYARD_PERF_MAP") != nullptr) GTEST_SKIP() << "SWITCHYARD_PERF_MAP is set for this run";
  testing::TempDir cache;
  Settings settings = Settings::from_environment();
  settings.cache_dir = cache.path();
  std::filesystem::remove(perf_map_path());
  const std::vector<float> plain = draw(*std::make_unique<Context>(settings));
  EXPECT_FALSE(std::filesystem::exists(perf_map_path())) << "no map without SWITCHYARD_PERF_MAP";

  settings.perf_map = true;
  Context context(settings);  // alive while its kernels' addresses are checked
  EXPECT_EQ(draw(context), plain) << "the map changes nothing the kernel computes";
  const std::vector<MapLine> lines = read_perf_map();
  std::filesystem::remove(perf_map_path());
  ASSERT_FALSE(lines.empty()) << perf_map_path() << " is missing or empty";
  bool entry = false;
  for (const MapLine& line : lines) {
    EXPECT_NE(line.start, 0u) << line.name;
    EXPECT_GT(line.size, 0u) << line.name;
    EXPECT_TRUE(in_executable_memory(line.start, line.size)) << line.name << " is not in executable memory";
    EXPECT_NE(line.name.find("[init_random<dtype=float32>@cpu"), std::string::npos) << line.name;
    entry |= line.name.rfind(std::string(kCpuEntrySymbol) + " [", 0) == 0;
  }
  EXPECT_TRUE(entry) << "the kernel's entry point " << kCpuEntrySymbol << " is named";
  for (size_t i = 0; i < lines.size(); ++i)
    for (size_t j = i + 1; j < lines.size(); ++j)
      EXPECT_TRUE(lines[i].start + lines[i].size <= lines[j].start || lines[j].start + lines[j].size <= lines[i].start)
          << lines[i].name << " overlaps " << lines[j].name;
}

TEST(PerfMap, TheVariableIsABoolean) {
  {
    testing::ScopedEnv on("SWITCHYARD_PERF_MAP", "1");
    EXPECT_TRUE(Settings::from_environment().perf_map);
  }
  testing::ScopedEnv bad("SWITCHYARD_PERF_MAP", "maybe");
  try {
    Settings::from_environment();
    ADD_FAILURE() << "no error for SWITCHYARD_PERF_MAP=maybe";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("SWITCHYARD_PERF_MAP='maybe' is not a boolean"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace switchyard
