// The helloworld and embed examples as a user runs them.
#include <gtest/gtest.h>

#include <regex>

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

TEST(Helloworld, BadFlagsFailClearly) {
  auto no_eval = run_command(bin("helloworld") + kSmall + " --num_steps 1");
  EXPECT_EQ(no_eval.exit_code, 1);
  EXPECT_NE(no_eval.output.find("run with --eval"), std::string::npos) << no_eval.output;
  auto big_k = run_command(bin("helloworld") + kSmall + " --eval --top 3 --num_steps 1");
  EXPECT_EQ(big_k.exit_code, 1);
  EXPECT_NE(big_k.output.find("top_k = 3; expected 1 to num_experts (2)"), std::string::npos) << big_k.output;
  auto half = run_command(bin("helloworld") + kSmall + " --eval --dtype float16 --num_steps 1");  // CPU: no fp16
  EXPECT_EQ(half.exit_code, 1);
  EXPECT_NE(half.output.find("float16"), std::string::npos) << half.output;
  auto bad_dtype = run_command(bin("helloworld") + kSmall + " --eval --dtype float8");
  EXPECT_NE(bad_dtype.exit_code, 0);
  auto missing =
      run_command(bin("helloworld") + kSmall + " --eval --num_steps 1 --load-weights /nonexistent.safetensors");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("cannot read safetensors file"), std::string::npos) << missing.output;
  auto checkpoint =
      run_command(bin("helloworld") + kSmall + " --eval --num_steps 1 --checkpoint_path /nonexistent.ckpt");
  EXPECT_NE(checkpoint.output.find(
                "Checkpoint not loaded: file `/nonexistent.ckpt` is not found. Will train the model from start."),
            std::string::npos);
}

}  // namespace
}  // namespace switchyard
