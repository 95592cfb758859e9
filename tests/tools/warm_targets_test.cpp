// `switchyard warm` with default targets compiles what this build and machine can, in the full
// build and in the CUDA-only one (SY_WITH_CPU_JIT=OFF, the GPU machine's build), and an explicit
// target the build cannot compile is a clear error naming the build option.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>

#include "core/fs.h"
#include "jit/clang_compiler.h"
#include "runtime/context.h"
#include "tests/support/test_support.h"

namespace switchyard {
namespace {

using testing::TempDir;

// A config with few kernels per target, so the CUDA-only default (two architectures) is quick.
std::string small_config(const TempDir& dir) {
  const std::string path = dir / "small.json";
  fs::write_file(path, R"({"name": "small", "model_dim": 64, "hidden_size": 128, "num_experts": 2, "top_k": 1,
                           "dtype": "float32"})");
  return path;
}

testing::CommandResult warm(const TempDir& cache, const std::string& args) {
  return testing::run_command("env -u SWITCHYARD_CACHE SWITCHYARD_CACHE_DIR='" + cache.path() + "' '" +
                              testing::switchyard_bin() + "' warm " + args);
}

bool contains(const nlohmann::json& list, const std::string& text) {
  return std::any_of(list.begin(), list.end(), [&](const nlohmann::json& item) {
    return item.get<std::string>().find(text) != std::string::npos;
  });
}

TEST(WarmTargets, DefaultTargetsAreWhatThisBuildAndMachineCanCompile) {
  TempDir dir, cache;
  auto r = warm(cache, small_config(dir) + " --jobs 2 --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto out = nlohmann::json::parse(r.output.substr(r.output.find('{')));
  const nlohmann::json& targets = out["targets"];
  ASSERT_FALSE(targets.empty());
  EXPECT_GT(out["compiled"].get<int>(), 0);
  if (cpu_jit_built()) {
    EXPECT_TRUE(contains(targets, "cpu")) << out.dump();
  } else {
    EXPECT_FALSE(contains(targets, "cpu")) << out.dump();
    EXPECT_TRUE(contains(out["left_out"], "-DSY_WITH_CPU_JIT=OFF")) << "says why cpu is left out: " << out.dump();
  }
  if (Context::cuda_unavailable_reason().empty()) {
    const std::string local = Context::global().cuda(0).target().to_string();
    EXPECT_TRUE(contains(targets, local)) << "the local GPU's " << local << ": " << out.dump();
  } else if (!cpu_jit_built()) {
    EXPECT_EQ(targets, nlohmann::json({"sm_80", "sm_90a"})) << "NVRTC compiles without a GPU";
  }
}

TEST(WarmTargets, ATargetTheBuildCannotCompileIsAClearError) {
  TempDir dir, cache;
  auto r = warm(cache, small_config(dir) + " --target cpu");
  if (cpu_jit_built()) {
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return;
  }
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("--target cpu: this build has no CPU JIT"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("-DSY_WITH_CPU_JIT=ON"), std::string::npos) << r.output;
  const std::string entries = cache.path() + "/v1/entries";
  EXPECT_TRUE(!fs::exists(entries) || fs::list_directory(entries).empty()) << "nothing was compiled";
}

}  // namespace
}  // namespace switchyard
