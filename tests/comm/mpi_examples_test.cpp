// The distributed examples as users run them under mpirun: helloworld's parallel types give the
// same losses, helloworld_switch prints Tutel's suffix, the variable-size collective examples
// print Tutel's expected values, and bad flags fail on every rank.
#include <gtest/gtest.h>

#include <regex>

#include "core/fs.h"
#include "runtime/safetensors.h"
#include "tests/support/test_support.h"

namespace switchyard {
namespace {

testing::CommandResult mpirun(int ranks, const std::string& program, const std::string& args) {
  return testing::run_command("timeout 300 " + std::string(SY_MPIRUN) + " -np " + std::to_string(ranks) + " " +
                              SY_EXAMPLES_DIR + "/" + program + " " + args);
}

const std::string kSmall =
    "--device cpu --batch_size 2 --num_tokens 32 --model_dim 32 --hidden_size 48 --num_local_experts 2 ";

std::vector<double> losses(const std::string& path) {
  std::string text;
  EXPECT_TRUE(fs::try_read_file(path, text)) << path;
  std::vector<double> values;
  for (size_t at = 0, end; (end = text.find('\n', at)) != std::string::npos; at = end + 1)
    values.push_back(std::stod(text.substr(at, end - at)));
  return values;
}

TEST(MpiExamples, HelloworldParallelTypesGiveTheSameLosses) {
  testing::TempDir dir;
  std::vector<std::vector<double>> runs;
  for (const char* type : {"data", "model", "adaptive:1"}) {
    auto r = mpirun(2, "helloworld", kSmall + "--num_steps 6 --parallel_type " + type + " --losses " + dir / type);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const std::string banner = "[Benchmark] world_size = 2, dtype = float32";
    EXPECT_NE(r.output.find(banner), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find(banner), r.output.rfind(banner)) << "rank 0 prints, the others stay quiet";
    EXPECT_NE(r.output.find("Total-Experts = 4 [managed by 2 device(s)]"), std::string::npos) << r.output;
    runs.push_back(losses(dir / type));
  }
  ASSERT_EQ(runs[0].size(), 6u);
  for (size_t i = 1; i < 6; ++i) EXPECT_LT(runs[0][i], runs[0][i - 1]) << "training lowers the loss";
  for (const auto& run : runs) {
    ASSERT_EQ(run.size(), runs[0].size());
    // NOTE: r = 0 sums expert gradients by reduce-scatter, r = 1 inside one GEMM: the same sums
    // in another order, so float32 losses agree to rounding, not bit for bit.
    for (size_t i = 0; i < run.size(); ++i) EXPECT_NEAR(run[i], runs[0][i], 1e-6 * std::abs(runs[0][i]));
  }
}

TEST(MpiExamples, ShardedExpertParallelTypesGiveTheSameLosses) {
  testing::TempDir dir;
  const std::string sharded =
      "--device cpu --batch_size 2 --num_tokens 32 --model_dim 32 --hidden_size 48 "
      "--num_local_experts -2 --top 1 --num_steps 4 ";
  std::vector<std::vector<double>> runs;
  for (const char* type : {"data", "model", "adaptive:1", "adaptive:2"}) {
    auto r = mpirun(2, "helloworld", sharded + "--parallel_type " + type + " --losses " + dir / type);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("Total-Experts = 1 [managed by 2 device(s)]"), std::string::npos) << r.output;
    runs.push_back(losses(dir / type));
  }
  for (const auto& run : runs) {
    ASSERT_EQ(run.size(), 4u);
    for (size_t i = 0; i < run.size(); ++i) EXPECT_NEAR(run[i], runs[0][i], 1e-6 * std::abs(runs[0][i]));
  }
}

TEST(MpiExamples, HelloworldSwitchPrintsTutelsSuffix) {
  auto r = mpirun(2, "helloworld_switch", kSmall + "--num_steps 18");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("a2a_ffn_overlap_degree = 1, device = `cpu`"), std::string::npos)
      << "Tutel's helloworld_switch banner has no parallel_type\n"
      << r.output;
  EXPECT_NE(r.output.find(" (f = 1.0, r = 1, o = 8)\n"), std::string::npos) << r.output;  // step 0
  EXPECT_NE(r.output.find(" (f = 1.0, r = 0, o = 1)\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(" (f = 0.0, r = 0, o = 1)\n"), std::string::npos) << r.output;  // step 17
  std::regex step(
      R"(STEP-9: loss = \d+\.\d{5}, step_time = \d+\.\d{6} sec, perf = \d+\.\d{2} tflops\. \(f = 1\.0, r = 1, o = 1\))");
  EXPECT_TRUE(std::regex_search(r.output, step)) << r.output;
}

TEST(MpiExamples, VariableSizeCollectives) {
  auto a2a = mpirun(2, "all_to_all_v", "");
  ASSERT_EQ(a2a.exit_code, 0) << a2a.output;
  EXPECT_NE(a2a.output.find("Device-0 recvs: [10, 20, 20]"), std::string::npos) << a2a.output;
  EXPECT_NE(a2a.output.find("Device-1 recvs: [10, 10, 10, 10, 20]"), std::string::npos) << a2a.output;
  auto gather = mpirun(2, "all_gather_v", "");
  ASSERT_EQ(gather.exit_code, 0) << gather.output;
  EXPECT_NE(gather.output.find("Device-1 recvs: [10, 10, 10, 10, 10, 20, 20, 20]"), std::string::npos) << gather.output;
  auto three = mpirun(3, "all_to_all_v", "");
  EXPECT_NE(three.exit_code, 0);
  EXPECT_NE(three.output.find("runs on 2 ranks"), std::string::npos) << three.output;
}

TEST(MpiExamples, ReshardedCheckpointsGiveTheSameOutput) {
  testing::TempDir dir;
  const std::string eval =
      "--device cpu --batch_size 2 --num_tokens 32 --model_dim 32 --hidden_size 48 --eval "
      "--num_steps 1 ";
  auto single =
      testing::run_command(std::string(SY_EXAMPLES_DIR) + "/helloworld " + eval +
                           "--num_local_experts 4 --save-weights " + dir / "one.st --losses " + dir / "single.txt");
  ASSERT_EQ(single.exit_code, 0) << single.output;
  auto sy = [&](const std::string& args) {
    return testing::run_command(testing::switchyard_bin() + " ckpt convert " + args);
  };
  auto to_two = sy(dir / "one.st " + dir / "two_{rank}.st --from-ranks 1 --to-ranks 2");
  ASSERT_EQ(to_two.exit_code, 0) << to_two.output;
  auto dist =
      mpirun(2, "helloworld",
             eval + "--num_local_experts 2 --checkpoint_path " + dir / "two_{rank}.st --losses " + dir / "dist.txt");
  ASSERT_EQ(dist.exit_code, 0) << dist.output;
  EXPECT_EQ(dist.output.find("Checkpoint not loaded"), std::string::npos) << dist.output;
  ASSERT_EQ(losses(dir / "dist.txt").size(), 1u);
  EXPECT_NEAR(losses(dir / "dist.txt")[0], losses(dir / "single.txt")[0],
              1e-9 * std::abs(losses(dir / "single.txt")[0]));
  // 2 -> 4 -> 1 gives back the original tensors, byte for byte.
  ASSERT_EQ(sy(dir / "two_{rank}.st " + dir / "four_{rank}_of_{size}.st --from-ranks 2 --to-ranks 4").exit_code, 0);
  ASSERT_TRUE(fs::exists(dir / "four_3_of_4.st"));
  ASSERT_EQ(sy(dir / "four_{rank}_of_{size}.st " + dir / "back.st --from-ranks 4 --to-ranks 1").exit_code, 0);
  const TensorFile original = read_safetensors(dir / "one.st"), back = read_safetensors(dir / "back.st");
  ASSERT_EQ(original.size(), back.size());
  for (const auto& [name, t] : original) {
    ASSERT_TRUE(back.count(name)) << name;
    EXPECT_EQ(back.at(name).dtype, t.dtype) << name;
    EXPECT_EQ(back.at(name).shape, t.shape) << name;
    EXPECT_TRUE(back.at(name).bytes == t.bytes) << name;
  }
  const auto settings = SafetensorsReader(dir / "one.st").metadata();  // the layer's settings travel too
  EXPECT_EQ(settings.at("activation"), "relu");
  EXPECT_EQ(SafetensorsReader(dir / "back.st").metadata(), settings);
  auto three = sy(dir / "one.st " + dir / "x_{rank}.st --from-ranks 1 --to-ranks 3");
  EXPECT_EQ(three.exit_code, 1);
  EXPECT_NE(three.output.find("4 experts cannot be split over 3 ranks"), std::string::npos) << three.output;
  // One expert shared by 2 ranks (hidden slices, M = 30 padded per slice), and back.
  const std::string shared_eval =
      "--device cpu --batch_size 2 --num_tokens 32 --model_dim 30 --hidden_size 48 "
      "--eval --num_steps 1 --top 1 ";
  auto one_expert =
      testing::run_command(std::string(SY_EXAMPLES_DIR) + "/helloworld " + shared_eval +
                           "--num_local_experts 1 --save-weights " + dir / "e1.st --losses " + dir / "e1.txt");
  ASSERT_EQ(one_expert.exit_code, 0) << one_expert.output;
  ASSERT_EQ(sy(dir / "e1.st " + dir / "half_{rank}.st --from-ranks 1 --to-ranks 2").exit_code, 0);
  EXPECT_EQ(read_safetensors(dir / "half_1.st").at("experts.batched_fc2_bias").shape, (std::vector<int64_t>{1, 15}));
  auto shared = mpirun(
      2, "helloworld",
      shared_eval + "--num_local_experts -2 --checkpoint_path " + dir / "half_{rank}.st --losses " + dir / "half.txt");
  ASSERT_EQ(shared.exit_code, 0) << shared.output;
  EXPECT_NEAR(losses(dir / "half.txt")[0], losses(dir / "e1.txt")[0], 1e-9 * std::abs(losses(dir / "e1.txt")[0]));
  ASSERT_EQ(sy(dir / "half_{rank}.st " + dir / "e1_back.st --from-ranks 2 --to-ranks 1").exit_code, 0);
  const TensorFile e1 = read_safetensors(dir / "e1.st"), e1_back = read_safetensors(dir / "e1_back.st");
  for (const auto& [name, t] : e1) EXPECT_TRUE(e1_back.at(name).bytes == t.bytes) << name;
  EXPECT_FALSE(fs::exists(dir / "x_0.st")) << "nothing is written when a check fails";
  auto missing = sy(dir / "two_{rank}.st " + dir / "y.st --from-ranks 3 --to-ranks 1");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("two_2.st"), std::string::npos) << missing.output;
  auto no_rank = sy(dir / "one.st " + dir / "z.st --from-ranks 1 --to-ranks 2");
  EXPECT_NE(no_rank.output.find("has no {rank}"), std::string::npos) << no_rank.output;
}

TEST(MpiExamples, BadFlagsFailOnEveryRank) {
  auto r = mpirun(2, "helloworld", kSmall + "--num_steps 1 --parallel_type adaptive:2");
  EXPECT_NE(r.exit_code, 0);
  const std::string message = "adaptive_r = 2 does not divide s = 1";
  EXPECT_NE(r.output.find(message), std::string::npos) << r.output;
  auto misfit = mpirun(2, "helloworld", "--device cpu --num_steps 1 --num_local_experts -3 --model_dim 16");
  EXPECT_NE(misfit.exit_code, 0);
  EXPECT_NE(misfit.output.find("--num_local_experts -3 does not fit 2 rank(s)"), std::string::npos) << misfit.output;
}

}  // namespace
}  // namespace switchyard
