// The helloworld, embed and dispatch examples as a user runs them.
#include <gtest/gtest.h>

#include <cmath>
#include <regex>

#include "core/fs.h"
#include "runtime/safetensors.h"
#include "tests/support/test_support.h"

namespace switchyard {
namespace {

using testing::run_command;

std::string bin(const std::string& name) {
  return std::string(SY_EXAMPLES_DIR) + "/" + name;
}
const std::string kSmall = " --batch_size 2 --num_tokens 32 --model_dim 16 --hidden_size 24 --device cpu";

TEST(Helloworld, PrintsTutelsLinesAndSavesOutput) {
  testing::TempDir dir;
  auto r = run_command(bin("helloworld") + kSmall + " --eval --num_steps 3 --save-weights " + dir.path() +
                       "/w.safetensors --save-output " + dir.path() + "/y.safetensors");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("[Statistics] param count for MoE local_experts = 1616, param count for MoE gate = 32.\n\n"),
            std::string::npos)
      << r.output;  // 2 experts x (2 x 24*16 + 24 + 16); gate 2 x 16
  EXPECT_NE(
      r.output.find("[Benchmark] world_size = 1, dtype = float32, model_dim = 16, hidden_size = 24, samples = 64, "
                    "num_local_experts = 2, topK = 2, a2a_ffn_overlap_degree = 1, parallel_type = `adaptive:1`, "
                    "device = `cpu`"),
      std::string::npos)
      << r.output;
  std::regex step(R"(STEP-2: loss = \d+\.\d{5}, step_time = \d+\.\d{6} sec, perf = \d+\.\d{2} tflops\.)");
  EXPECT_TRUE(std::regex_search(r.output, step)) << r.output;
  EXPECT_NE(r.output.find("\n\n[Summary] Average synchronized step_time = "), std::string::npos);
  // The summary is the mean of the steps that ran (Tutel's divides by 10 whatever ran: not copied).
  double sum = 0;
  const std::regex time(R"(STEP-\d+: loss = [0-9.]+, step_time = (\d+\.\d{6}) sec)");  // not the summary's
  for (auto it = std::sregex_iterator(r.output.begin(), r.output.end(), time); it != std::sregex_iterator(); ++it)
    sum += std::stod((*it)[1]);
  std::smatch summary;
  ASSERT_TRUE(std::regex_search(r.output, summary, std::regex(R"(Average synchronized step_time = ([0-9.e+-]+) sec)")));
  EXPECT_NEAR(std::stod(summary[1]), sum / 3, 1e-6 + 1e-5 * sum) << r.output;
  TensorFile y = read_safetensors(dir.path() + "/y.safetensors");
  EXPECT_EQ(y.at("output").shape, (std::vector<int64_t>{2, 32, 16}));
  // The same weights give the same first loss in a second run (fixed data seed).
  auto again =
      run_command(bin("helloworld") + kSmall + " --eval --num_steps 1 --load-weights " + dir.path() + "/w.safetensors");
  auto first_loss = [](const std::string& out) { return out.substr(out.find("STEP-0: loss = "), 24); };
  EXPECT_EQ(first_loss(r.output), first_loss(again.output));
  auto embed = run_command(bin("embed") + " " + dir.path() + "/w.safetensors 4");
  EXPECT_EQ(embed.exit_code, 0) << embed.output;
  EXPECT_NE(embed.output.find("output float32[4, 16] on cpu"), std::string::npos) << embed.output;
}

// The dispatch example on the public API (the shared library): encode + decode of random routing
// must give each token back scaled by its kept gates; a bad flag is a clear error.
TEST(DispatchRoundtrip, RecoversEveryTokenThroughThePublicApi) {
  auto r = run_command(bin("dispatch_roundtrip") +
                       " --device cpu --num_tokens 300 --model_dim 24 --num_experts 5 --top 2 --capacity_factor 0.6");
  ASSERT_EQ(r.exit_code, 0) << r.output;  // it exits 1 when any output is off by 1e-5 or more
  EXPECT_NE(r.output.find("max |error| = "), std::string::npos) << r.output;
  std::smatch kept;
  ASSERT_TRUE(std::regex_search(r.output, kept, std::regex(R"(kept (\d+) of 600 choices)"))) << r.output;
  EXPECT_LT(std::stoi(kept[1]), 600) << "capacity factor 0.6 must drop choices";
  auto bad = run_command(bin("dispatch_roundtrip") + " --device cpu --num_experts 2 --top 3");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("--top 3 exceeds --num_experts 2"), std::string::npos) << bad.output;
}

std::vector<std::string> read_lines(const std::string& path) {
  std::string text;
  EXPECT_TRUE(fs::try_read_file(path, text)) << path;
  std::vector<std::string> lines;
  for (size_t at = 0, end; (end = text.find('\n', at)) != std::string::npos; at = end + 1)
    lines.push_back(text.substr(at, end - at));
  return lines;
}

TEST(Helloworld, TrainingLowersTheLossDeterministically) {
  testing::TempDir dir;
  const std::string train = bin("helloworld") + kSmall + " --num_steps 20 --l_aux_wt 0.01 --losses ";
  auto first = run_command(train + dir / "a.txt");
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_NE(first.output.find("perf = "), std::string::npos);
  auto losses = read_lines(dir / "a.txt");
  ASSERT_EQ(losses.size(), 20u);
  for (size_t i = 1; i < losses.size(); ++i)
    EXPECT_LT(std::stod(losses[i]), std::stod(losses[i - 1])) << "step " << i << " did not lower the loss";
  auto second = run_command(train + dir / "b.txt");
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_EQ(read_lines(dir / "b.txt"), losses) << "two runs on the same threads give bit-identical losses";
}

// The main job in 16 bits on the CPU: the first loss (the same seed's weights, rounded) agrees with
// float32's to the 16-bit rounding, and training runs with finite losses.
TEST(Helloworld, SixteenBitTrainingRunsOnTheCpu) {
  testing::TempDir dir;
  const std::string train = bin("helloworld") + kSmall + " --num_steps 3 --losses ";
  auto wide = run_command(train + dir / "float32.txt");
  ASSERT_EQ(wide.exit_code, 0) << wide.output;
  const double reference = std::stod(read_lines(dir / "float32.txt").at(0));
  for (const char* dtype : {"float16", "bfloat16"}) {
    auto run = run_command(train + dir / dtype + " --dtype " + dtype);
    ASSERT_EQ(run.exit_code, 0) << dtype << ": " << run.output;
    EXPECT_NE(run.output.find(std::string("dtype = ") + dtype), std::string::npos) << run.output;
    const auto losses = read_lines(dir / dtype);
    ASSERT_EQ(losses.size(), 3u) << dtype;
    for (const auto& loss : losses) EXPECT_TRUE(std::isfinite(std::stod(loss))) << dtype << ": " << loss;
    EXPECT_NEAR(std::stod(losses[0]), reference, 2e-2 * std::abs(reference)) << dtype;
  }
}

// --gate cosine_top (Swin-MoE's router) trains: every step lowers the loss, and the parameter
// count line counts the projector, the similarity matrix and the temperature.
TEST(Helloworld, CosineGateTrains) {
  testing::TempDir dir;
  auto run = run_command(bin("helloworld") + kSmall + " --num_steps 10 --gate cosine_top --proj_dim 8 --losses " +
                         dir / "losses.txt");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("param count for MoE gate = " + std::to_string(8 * 16 + 8 + 8 * 2 + 1)), std::string::npos)
      << run.output;
  const auto losses = read_lines(dir / "losses.txt");
  ASSERT_EQ(losses.size(), 10u);
  for (size_t i = 1; i < losses.size(); ++i)
    EXPECT_LT(std::stod(losses[i]), std::stod(losses[i - 1])) << "step " << i << " did not lower the loss";
  auto bad = run_command(bin("helloworld") + kSmall + " --num_steps 1 --gate cosine");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("cosine_top"), std::string::npos) << bad.output;
}

TEST(CustomExpert, MatchesTheBuiltInFfnThenRunsAnotherActivation) {
  auto run = run_command(bin("custom_expert"));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("custom relu experts vs the built-in FFN: max |difference| = "), std::string::npos)
      << run.output;
  EXPECT_NE(run.output.find("custom squared-relu experts: output norm "), std::string::npos) << run.output;
}

TEST(Helloworld, CheckpointResumesWhereTrainingStopped) {
  testing::TempDir dir;
  const std::string ckpt = dir / "ckpt.safetensors";
  auto straight = run_command(bin("helloworld") + kSmall + " --num_steps 4 --losses " + dir / "straight.txt");
  ASSERT_EQ(straight.exit_code, 0) << straight.output;
  auto part1 = run_command(bin("helloworld") + kSmall + " --num_steps 3 --checkpoint_path " + ckpt);
  ASSERT_EQ(part1.exit_code, 0) << part1.output;
  EXPECT_NE(
      part1.output.find("Checkpoint not loaded: file `" + ckpt + "` is not found. Will train the model from start."),
      std::string::npos)
      << part1.output;
  auto part2 = run_command(bin("helloworld") + kSmall + " --num_steps 1 --checkpoint_path " + ckpt + " --losses " +
                           dir / "resumed.txt");
  ASSERT_EQ(part2.exit_code, 0) << part2.output;
  EXPECT_EQ(part2.output.find("Checkpoint not loaded"), std::string::npos);
  EXPECT_EQ(read_lines(dir / "resumed.txt").at(0), read_lines(dir / "straight.txt").at(3))
      << "step 0 after loading the step-3 checkpoint is step 3 of an uninterrupted run";
  auto other = run_command(bin("helloworld") +
                           " --batch_size 2 --num_tokens 32 --model_dim 32 --hidden_size 24 "
                           "--device cpu --num_steps 1 --checkpoint_path " +
                           ckpt);
  EXPECT_EQ(other.exit_code, 1);
  EXPECT_NE(other.output.find("has shape [2, 24, 16]; the layer expects [2, 24, 32]"), std::string::npos)
      << other.output;
}

TEST(Helloworld, BadFlagsFailClearly) {
  auto big_k = run_command(bin("helloworld") + kSmall + " --eval --top 3 --num_steps 1");
  EXPECT_EQ(big_k.exit_code, 1);
  EXPECT_NE(big_k.output.find("top_k = 3; expected 1 to num_experts (2)"), std::string::npos) << big_k.output;
  auto bad_dtype = run_command(bin("helloworld") + kSmall + " --eval --dtype float8");
  EXPECT_NE(bad_dtype.exit_code, 0);
  auto missing =
      run_command(bin("helloworld") + kSmall + " --eval --num_steps 1 --load-weights /nonexistent.safetensors");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("cannot read safetensors file"), std::string::npos) << missing.output;
  auto bad_grad_weight = run_command(bin("helloworld") + kSmall + " --num_steps 1 --l_aux_wt nan");
  EXPECT_EQ(bad_grad_weight.exit_code, 1);
  EXPECT_NE(bad_grad_weight.output.find("l_aux_weight = nan"), std::string::npos) << bad_grad_weight.output;
  auto nccl_on_cpu = run_command(bin("helloworld") + kSmall + " --eval --num_steps 1 --comm nccl");
  EXPECT_EQ(nccl_on_cpu.exit_code, 1);
  EXPECT_NE(nccl_on_cpu.output.find("--comm nccl exchanges GPU memory; this rank runs on cpu"), std::string::npos)
      << nccl_on_cpu.output;
  EXPECT_NE(run_command(bin("helloworld") + kSmall + " --eval --num_steps 1 --comm gloo").exit_code, 0);
}

}  // namespace
}  // namespace switchyard
