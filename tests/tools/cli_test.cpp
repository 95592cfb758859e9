// The switchyard command as users run it: warm/dump/cache across processes, and bad input.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "tests/support/test_support.h"

namespace switchyard {
namespace {

using testing::CommandResult;
using testing::run_command;
using testing::TempDir;

// Kernels of cli_tiny.json (tiny.json in float32 and bfloat16; spec_test breaks tiny.json's
// down): on the CPU, dispatch 16, per dtype 10, route_locations and route_priority for the float32
// scores 3; on CUDA the same (no transposed weight copies outside TF32 on Hopper).
constexpr int kTinyCpuKernels = 39;
constexpr int kTinyCudaKernels = 39;

std::string tiny() {
  return testing::source_dir() + "/tests/tools/cli_tiny.json";
}

// Runs switchyard with a private cache directory and a clean environment for it.
CommandResult sy(const std::string& cache, const std::string& args, const std::string& env = "") {
  return run_command("env -u SWITCHYARD_CACHE -u SWITCHYARD_FORCE_COMPILE SWITCHYARD_CACHE_DIR='" + cache + "' " + env +
                     " '" + testing::switchyard_bin() + "' " + args);
}

nlohmann::json json_of(const CommandResult& r) {
  auto start = r.output.find_first_of("{[");
  auto json = nlohmann::json::parse(start == std::string::npos ? "" : r.output.substr(start), nullptr, false);
  EXPECT_FALSE(json.is_discarded()) << r.output;
  return json;
}

TEST(Cli, SecondProcessCompilesNothing) {
  TempDir cache;
  auto first = json_of(sy(cache.path(), "warm " + tiny() + " --target cpu --target sm_90 --json"));
  EXPECT_GT(first["compiled"].get<int>(), 0);
  EXPECT_EQ(first["cached"].get<int>(), 0);
  auto second = json_of(sy(cache.path(), "warm " + tiny() + " --target cpu --target sm_90 --json"));
  EXPECT_EQ(second["compiled"].get<int>(), 0);
  EXPECT_EQ(second["cached"], first["kernels"]);
}

TEST(Cli, WarmTrainingCoversATrainingRun) {
  TempDir cache;
  const std::string train = "env -u SWITCHYARD_CACHE SWITCHYARD_CACHE_DIR='" + cache.path() + "' SWITCHYARD_LOG=info " +
                            std::string(SY_EXAMPLES_DIR) +
                            "/helloworld --device cpu --batch_size 2 --num_tokens 16 --model_dim 64 "
                            "--hidden_size 128 --num_local_experts 4 --num_steps 2";
  auto forward_only = json_of(sy(cache.path(), "warm " + tiny() + " --target cpu --json"));
  EXPECT_EQ(forward_only["kernels"], kTinyCpuKernels);
  auto missing = run_command(train);
  ASSERT_EQ(missing.exit_code, 0) << missing.output;
  EXPECT_NE(missing.output.find("cache miss"), std::string::npos) << "training needs kernels a forward warm lacks";
  TempDir fresh;
  auto training = json_of(sy(fresh.path(), "warm " + tiny() + " --target cpu --training --json"));
  EXPECT_EQ(training["kernels"], kTinyCpuKernels + 28);  // spec_test breaks the 28 down
  auto covered =
      run_command("env SWITCHYARD_CACHE_DIR='" + fresh.path() + "' " + train.substr(train.find(" SWITCHYARD_LOG")));
  ASSERT_EQ(covered.exit_code, 0) << covered.output;
  EXPECT_EQ(covered.output.find("cache miss"), std::string::npos) << covered.output;
}

TEST(Cli, EightProcessesOnAColdCacheCompileEachKernelOnce) {
  TempDir cache, out;
  std::string command;
  for (int i = 0; i < 8; ++i) {
    command += "(env SWITCHYARD_CACHE_DIR='" + cache.path() + "' '" + testing::switchyard_bin() + "' warm " + tiny() +
               " --target cpu --json > '" + out.path() + "/" + std::to_string(i) + ".json' 2>&1) & ";
  }
  ASSERT_EQ(run_command(command + "wait").exit_code, 0);
  int compiled = 0, kernels = 0;
  for (int i = 0; i < 8; ++i) {
    CommandResult r{0, fs::read_file(out.path() + "/" + std::to_string(i) + ".json")};
    auto json = json_of(r);
    compiled += json["compiled"].get<int>();
    kernels = json["kernels"].get<int>();
  }
  EXPECT_EQ(compiled, kernels) << "each kernel is compiled by exactly one of the 8 processes";
  auto verify = sy(cache.path(), "cache verify --json");
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_EQ(json_of(verify)["checked"].get<int>(), kernels);
  EXPECT_TRUE(fs::list_directory(cache.path() + "/v1/tmp").empty()) << "no staging directory is left behind";
}

TEST(Cli, CorruptEntriesAreReportedThenRecompiled) {
  TempDir cache;
  ASSERT_EQ(sy(cache.path(), "warm " + tiny() + " --target cpu").exit_code, 0);
  auto entries = json_of(sy(cache.path(), "cache list --json"));
  ASSERT_GE(entries.size(), 2u);
  std::string first = cache.path() + "/v1/entries/" + entries[0]["key"].get<std::string>().substr(0, 2) + "/" +
                      entries[0]["key"].get<std::string>() + "/kernel.o";
  std::string second = cache.path() + "/v1/entries/" + entries[1]["key"].get<std::string>().substr(0, 2) + "/" +
                       entries[1]["key"].get<std::string>() + "/kernel.o";
  std::string bytes = fs::read_file(first);
  fs::write_file(first, bytes.substr(0, bytes.size() / 2));  // truncated
  bytes = fs::read_file(second);
  bytes[bytes.size() / 2] ^= 0x40;  // one flipped byte
  fs::write_file(second, bytes);

  auto verify = sy(cache.path(), "cache verify");
  EXPECT_EQ(verify.exit_code, 1);
  EXPECT_NE(verify.output.find(entries[0]["key"].get<std::string>()), std::string::npos) << verify.output;
  EXPECT_NE(verify.output.find("fails its checksum"), std::string::npos) << verify.output;
  auto rewarm = sy(cache.path(), "warm " + tiny() + " --target cpu --json");
  EXPECT_EQ(json_of(rewarm)["compiled"].get<int>(), 2) << rewarm.output;
  EXPECT_NE(rewarm.output.find("is corrupt"), std::string::npos) << "the repair is reported";
  EXPECT_EQ(sy(cache.path(), "cache verify").exit_code, 0);
}

TEST(Cli, ExportThenImportGivesAWarmCache) {
  TempDir a, b, files;
  ASSERT_EQ(sy(a.path(), "warm " + tiny() + " --target cpu --target sm_80").exit_code, 0);
  ASSERT_EQ(sy(a.path(), "cache export " + files.path() + "/bundle").exit_code, 0);
  auto imported = sy(b.path(), "cache import " + files.path() + "/bundle");
  ASSERT_EQ(imported.exit_code, 0) << imported.output;
  auto warm = json_of(sy(b.path(), "warm " + tiny() + " --target cpu --target sm_80 --json"));
  EXPECT_EQ(warm["compiled"].get<int>(), 0);
}

TEST(Cli, PruneKeepsTheCacheUnderTheCap) {
  TempDir cache;
  ASSERT_EQ(sy(cache.path(), "warm " + tiny() + " --target cpu").exit_code, 0);
  auto pruned = json_of(sy(cache.path(), "cache prune --max-bytes 100K --json"));
  EXPECT_LE(pruned["bytes_after"].get<uint64_t>(), 100u * 1024);
  EXPECT_GT(pruned["removed"].get<int>(), 0);
  EXPECT_EQ(sy(cache.path(), "cache prune --max-bytes lots").exit_code, 1);
}

TEST(Cli, ReadOnlyAndMissingCacheDirectoriesStillRun) {
  TempDir cache, home;
  ASSERT_EQ(sy(cache.path(), "warm " + tiny() + " --target cpu").exit_code, 0);
  auto ro = sy(cache.path(), "warm " + tiny() + " --target cpu --target sm_80 --json", "SWITCHYARD_CACHE=ro");
  EXPECT_EQ(ro.exit_code, 0) << ro.output;
  EXPECT_EQ(json_of(ro)["compiled"].get<int>(), kTinyCudaKernels) << "only the sm_80 kernels were missing";
  EXPECT_EQ(json_of(sy(cache.path(), "cache stats --json"))["entries"].get<int>(), kTinyCpuKernels)
      << "read-only wrote nothing";
  // No HOME, no XDG_CACHE_HOME, no SWITCHYARD_CACHE_DIR: memory only, with a warning.
  auto homeless = run_command("env -u HOME -u XDG_CACHE_HOME -u SWITCHYARD_CACHE_DIR '" + testing::switchyard_bin() +
                              "' warm " + tiny() + " --target cpu");
  EXPECT_EQ(homeless.exit_code, 0) << homeless.output;
  EXPECT_NE(homeless.output.find("kept in memory only"), std::string::npos) << homeless.output;
  // HOME is a file: the default directory cannot be created.
  fs::write_file(home / "file", "x");
  auto bad_home = run_command("env -u XDG_CACHE_HOME -u SWITCHYARD_CACHE_DIR HOME='" + home.path() + "/file' '" +
                              testing::switchyard_bin() + "' warm " + tiny() + " --target cpu");
  EXPECT_EQ(bad_home.exit_code, 0) << bad_home.output;
  EXPECT_NE(bad_home.output.find("not writable"), std::string::npos) << bad_home.output;
  auto off = sy(cache.path(), "warm " + tiny() + " --target cpu --json", "SWITCHYARD_CACHE=off");
  EXPECT_EQ(json_of(off)["compiled"].get<int>(), kTinyCpuKernels);
}

TEST(Cli, KeysDoNotDependOnWhereTheProcessRuns) {
  TempDir cache, elsewhere;
  ASSERT_EQ(sy(cache.path(), "warm " + tiny() + " --target cpu --target sm_90").exit_code, 0);
  auto again = run_command("cd '" + elsewhere.path() + "' && env SWITCHYARD_CACHE_DIR='" + cache.path() + "' '" +
                           testing::switchyard_bin() + "' warm " + tiny() + " --target cpu --target sm_90 --json");
  EXPECT_EQ(json_of(again)["compiled"].get<int>(), 0);
  // No absolute path of this machine is part of any key.
  for (const auto& shard : fs::list_directory(cache.path() + "/v1/entries")) {
    for (const auto& key : fs::list_directory(cache.path() + "/v1/entries/" + shard)) {
      auto meta =
          nlohmann::json::parse(fs::read_file(cache.path() + "/v1/entries/" + shard + "/" + key + "/meta.json"));
      std::string parts = meta["key_parts"].dump();
      EXPECT_EQ(parts.find(testing::source_dir()), std::string::npos) << parts;
      EXPECT_EQ(parts.find(cache.path()), std::string::npos) << parts;
      EXPECT_EQ(parts.find("/usr/"), std::string::npos) << parts;
    }
  }
}

TEST(Cli, DumpWritesEveryStageWhetherCachedOrNot) {
  TempDir cache, cold, warm;
  auto first = sy(cache.path(), "dump " + tiny() + " --target cpu --target sm_90 --out " + cold.path());
  ASSERT_EQ(first.exit_code, 0) << first.output;
  auto second = sy(cache.path(), "dump " + tiny() + " --target cpu --target sm_90 --out " + warm.path());
  ASSERT_EQ(second.exit_code, 0) << second.output;
  auto a = nlohmann::json::parse(fs::read_file(cold / "manifest.json"));
  auto b = nlohmann::json::parse(fs::read_file(warm / "manifest.json"));
  ASSERT_EQ(a["kernels"].size(), b["kernels"].size());
  for (size_t i = 0; i < a["kernels"].size(); ++i) {
    EXPECT_FALSE(a["kernels"][i]["cached"].get<bool>());
    EXPECT_TRUE(b["kernels"][i]["cached"].get<bool>());
    EXPECT_EQ(a["kernels"][i]["files"], b["kernels"][i]["files"]);
    for (const auto& file : b["kernels"][i]["files"]) {
      EXPECT_EQ(fs::read_file(cold / file.get<std::string>()), fs::read_file(warm / file.get<std::string>())) << file;
    }
  }
  bool saw_ptx = false, saw_ir = false;
  for (const auto& k : a["kernels"]) {
    for (const auto& f : k["files"]) {
      saw_ptx |= f.get<std::string>().ends_with("kernel.ptx");
      saw_ir |= f.get<std::string>().ends_with("kernel.ll");
    }
  }
  EXPECT_TRUE(saw_ptx && saw_ir);
}

TEST(Cli, DumpDirEnvironmentDumpsEveryKernelUsed) {
  TempDir cache, dumps;
  ASSERT_EQ(sy(cache.path(), "warm " + tiny() + " --target cpu").exit_code, 0);
  auto r = sy(cache.path(), "warm " + tiny() + " --target cpu", "SWITCHYARD_DUMP_DIR='" + dumps.path() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(fs::list_directory(dumps / "cpu").size(), static_cast<size_t>(kTinyCpuKernels))
      << "dumped on cache hits too";
}

struct BadInput {
  std::string name;
  std::string config;  // written to model.json ("" = use tiny.json)
  std::string args;    // after the config path
  std::string expected;
};

TEST(Cli, BadInputGivesAClearErrorAndNonZeroExit) {
  const std::vector<BadInput> cases = {
      {"not json", "{ model_dim: ", "--target cpu", "is not valid JSON"},
      {"missing field", R"({"model_dim": 64, "num_experts": 4})", "--target cpu",
       "missing required field \"hidden_size\""},
      {"unknown field", R"({"model_dim": 64, "hidden_size": 8, "num_experts": 4, "topk": 2})", "--target cpu",
       "unknown field \"topk\""},
      {"top_k above experts", R"({"model_dim": 64, "hidden_size": 8, "num_experts": 2, "top_k": [1, 3]})",
       "--target cpu", "top_k 3 is invalid"},
      {"negative dim", R"({"model_dim": -4, "hidden_size": 8, "num_experts": 2})", "--target cpu",
       "\"model_dim\" is -4"},
      {"unknown dtype", R"({"model_dim": 64, "hidden_size": 8, "num_experts": 2, "dtype": "float8"})", "--target cpu",
       "unknown dtype 'float8'"},
      {"non-finite capacity", R"({"model_dim": 64, "hidden_size": 8, "num_experts": 2, "capacity_factor": "inf"})",
       "--target cpu", "capacity_factor \"inf\" is not a finite number"},
      {"no kernel for target", R"({"model_dim": 64, "hidden_size": 8, "num_experts": 2, "dtype": "float64"})",
       "--target sm_80", "has no kernel for target sm_80"},
      {"unknown target", "", "--target sm_8", "unknown target 'sm_8'"},
      {"unknown target name", "", "--target gpu", "unknown target 'gpu'"},
  };
  TempDir cache, files;
  for (const auto& c : cases) {
    std::string config = tiny();
    if (!c.config.empty()) {
      config = files / (c.name + ".json");
      for (auto& ch : config) ch = ch == ' ' ? '_' : ch;
      fs::write_file(config, c.config);
    }
    auto r = sy(cache.path(), "warm '" + config + "' " + c.args);
    EXPECT_EQ(r.exit_code, 1) << c.name << ": " << r.output;
    EXPECT_NE(r.output.find(c.expected), std::string::npos) << c.name << ": " << r.output;
  }
  auto missing = sy(cache.path(), "warm " + files.path() + "/absent.json");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("cannot read model config"), std::string::npos) << missing.output;
  fs::write_file(files / "blocker", "x");
  auto dump = sy(cache.path(), "dump " + tiny() + " --target cpu --out " + files.path() + "/blocker/out");
  EXPECT_EQ(dump.exit_code, 1);
  EXPECT_NE(dump.output.find("cannot write the dump directory"), std::string::npos) << dump.output;
  auto usage = sy(cache.path(), "warm");
  EXPECT_NE(usage.exit_code, 0);
  auto bad_env = sy(cache.path(), "cache stats", "SWITCHYARD_CACHE=sometimes");
  EXPECT_EQ(bad_env.exit_code, 1);
  EXPECT_NE(bad_env.output.find("SWITCHYARD_CACHE='sometimes'"), std::string::npos) << bad_env.output;
  auto unknown_env = sy(cache.path(), "cache stats", "SWITCHYARD_CACHEDIR=/tmp");
  EXPECT_EQ(unknown_env.exit_code, 0);
  EXPECT_NE(unknown_env.output.find("unknown environment variable SWITCHYARD_CACHEDIR"), std::string::npos);
}

// SWITCHYARD_GEMM caps the CUDA GEMM candidates; a value it does not know is an error naming it
// (before anything compiles), not a silent fallback to the default.
TEST(Cli, UnknownGemmChoiceIsAClearError) {
  testing::TempDir cache;
  const std::string mixtral = testing::source_dir() + "/examples/models/mixtral-8x7b.json";
  CommandResult bad = sy(cache.path(), "warm " + mixtral + " --target sm_90a", "SWITCHYARD_GEMM=fastest");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("SWITCHYARD_GEMM='fastest'"), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("auto, mma or simt"), std::string::npos) << bad.output;
}

TEST(Cli, InfoReportsDevicesAndCompilers) {
  TempDir cache;
  auto r = sy(cache.path(), "info --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto info = json_of(r);
  EXPECT_EQ(info["llvm"], "16.0.6");
  EXPECT_TRUE(info["nvrtc"].is_string());
  EXPECT_NE(info["mpi"].get<std::string>().find("Open MPI"), std::string::npos) << info["mpi"];
  // NCCL comes with CUDA 13 here; where it is missing the reason says what was tried.
  if (info["nccl"].is_null())
    EXPECT_NE(info["nccl_status"].get<std::string>().find("libnccl.so.2"), std::string::npos);
  else
    EXPECT_EQ(info["nccl"].get<std::string>().substr(0, 2), "2.");
  EXPECT_EQ(info["cache"]["dir"], cache.path());
  if (info["cuda_devices"].empty()) {
    EXPECT_NE(info["cuda_status"].get<std::string>().find("no CUDA"), std::string::npos);
  }
}

}  // namespace
}  // namespace switchyard
