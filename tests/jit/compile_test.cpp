// Every CUDA specialization the sample configs need compiles with NVRTC for sm_80 and sm_90
// (no GPU needed), and failed compiles of both compilers produce actionable errors.
#include <gtest/gtest.h>

#include <regex>
#include <set>

#include "core/error.h"
#include "jit/clang_compiler.h"
#include "jit/kernels/dispatch.h"
#include "jit/nvrtc_compiler.h"
#include "jit/nvrtc_library.h"
#include "runtime/model_config.h"
#include "tests/support/test_support.h"

namespace switchyard {
namespace {

TEST(NvrtcCompile, EverySampleConfigKernelCompilesForSm80Sm90AndSm90a) {
  ASSERT_TRUE(NvrtcLibrary::available())
      << "NVRTC is required to check the CUDA templates (CUDA 13 at /usr/local/cuda)";
  NvrtcCompiler nvrtc;
  std::string root = testing::source_dir();
  size_t compiled = 0;
  for (const char* model : {"tiny.json", "mixtral-8x7b.json"}) {
    ModelConfig config = ModelConfig::load(root + "/examples/models/" + model);
    for (const Target& target : {Target::cuda(80), Target::cuda(90), Target::cuda(90, true)}) {
      for (const KernelSpec& spec : kernel_set(config, target).specs) {
        Binary binary = nvrtc.compile(spec, generate_source(spec));
        EXPECT_EQ(binary.artifacts.at("kernel.cubin").substr(0, 4),
                  "\x7f"
                  "ELF")
            << spec.to_string();
        EXPECT_NE(binary.artifacts.at("kernel.ptx").find(".target " + target.to_string() + "\n"), std::string::npos)
            << spec.to_string();
        EXPECT_NE(binary.log.find("spill"), std::string::npos) << "ptxas resource usage is in the log";
        EXPECT_FALSE(binary.symbol.empty());
        ++compiled;
      }
    }
  }
  EXPECT_EQ(compiled, 3u * (57u + 33u));  // the counts spec_test explains
}

// The kernels training adds (backward, SGD) for a config, leaving out its forward kernels.
std::vector<KernelSpec> training_only(ModelConfig config, const Target& target) {
  std::set<std::string> forward;
  for (const auto& spec : kernel_set(config, target).specs) forward.insert(spec.to_string());
  config.training = true;
  std::vector<KernelSpec> extra;
  for (const auto& spec : kernel_set(config, target).specs)
    if (!forward.count(spec.to_string())) extra.push_back(spec);
  return extra;
}

TEST(NvrtcCompile, TrainingKernelsCompile) {
  ASSERT_TRUE(NvrtcLibrary::available());
  NvrtcCompiler nvrtc;
  ModelConfig tiny = ModelConfig::load(testing::source_dir() + "/examples/models/tiny.json");
  ModelConfig swiglu = ModelConfig::from_json_text(
      R"({"model_dim": 128, "hidden_size": 256, "num_experts": 8, "top_k": 2, "expert_type": "swiglu",
          "dtype": ["float16", "bfloat16"], "fp32_gate": true, "allow_tf32": true})",
      "inline");
  auto tiny_extra = training_only(tiny, Target::cuda(90));
  // Per dtype (f32, f16, bf16): 6 GEMMs, a gate_backward and a gate_grad per top_k (4),
  // activate, add, sgd (3), and the example loss's gradient fill (1).
  EXPECT_EQ(tiny_extra.size(), 3u * (6u + 4u + 3u + 1u));
  auto swiglu_extra = training_only(swiglu, Target::cuda(80));
  for (const auto* set : {&tiny_extra, &swiglu_extra}) {
    for (const KernelSpec& spec : *set) {
      Binary binary = nvrtc.compile(spec, generate_source(spec));
      EXPECT_EQ(binary.artifacts.at("kernel.cubin").substr(0, 4),
                "\x7f"
                "ELF")
          << spec.to_string();
    }
  }
  EXPECT_GT(swiglu_extra.size(), 10u);
}

// The cosine_top gate's kernels (normalization, the temperature scale, their backward and the
// gate's GEMMs), what a cosine config adds to a top config, in both dtypes of the Swin-MoE sample.
TEST(NvrtcCompile, CosineGateKernelsCompile) {
  ASSERT_TRUE(NvrtcLibrary::available());
  NvrtcCompiler nvrtc;
  ModelConfig cosine = ModelConfig::load(testing::source_dir() + "/examples/models/swin-moe-cosine.json");
  cosine.training = true;
  ModelConfig top = cosine;
  top.gates = {ModelConfig::Gate{}};
  for (const Target& target : {Target::cuda(80), Target::cuda(90, true)}) {
    std::set<std::string> plain;
    for (const auto& spec : kernel_set(top, target).specs) plain.insert(spec.to_string());
    size_t added = 0;
    for (const auto& spec : kernel_set(cosine, target).specs) {
      if (plain.count(spec.to_string())) continue;
      Binary binary = nvrtc.compile(spec, generate_source(spec));
      EXPECT_EQ(binary.artifacts.at("kernel.cubin").substr(0, 4),
                "\x7f"
                "ELF")
          << spec.to_string();
      ++added;
    }
    // per dtype: 4 cosine ops, the projector and logits GEMMs and 4 backward GEMMs (some shared
    // with the top gate's), the bias's row sums
    EXPECT_GE(added, 2u * 4u) << target.to_string();
  }
}

TEST(NvrtcCompile, FailureShowsNumberedSourceOptionsAndLog) {
  ASSERT_TRUE(NvrtcLibrary::available());
  KernelSpec spec = kernels::dispatch_spec(true, DType::kFloat32, 64, 1, true, Target::cuda(90));
  Source source = generate_source(spec);
  source.text += "\nstatic_assert(sizeof(int) == 3, \"deliberately broken\");\n";
  try {
    NvrtcCompiler().compile(spec, source);
    FAIL() << "expected a CompileError";
  } catch (const CompileError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find(spec.to_string()), std::string::npos) << what;
    EXPECT_NE(what.find("deliberately broken"), std::string::npos) << what;
    EXPECT_NE(what.find("--gpu-architecture=sm_90"), std::string::npos) << what;
    EXPECT_NE(what.find(">   6 | static_assert"), std::string::npos) << what;
    EXPECT_FALSE(e.log().empty());
  }
}

TEST(ClangCompile, ObjectIrAndAssemblyForTheHostCpu) {
  ClangCompiler clang;
  KernelSpec spec = kernels::dispatch_spec(true, DType::kFloat32, 64, 2, false, Target::cpu());
  Binary binary = clang.compile(spec, generate_source(spec));
  EXPECT_EQ(binary.artifacts.at("kernel.o").substr(0, 4),
            "\x7f"
            "ELF");
  EXPECT_NE(binary.artifacts.at("kernel.ll").find("define"), std::string::npos);
  EXPECT_NE(binary.artifacts.at("kernel.s").find("sy_entry"), std::string::npos);
  // NOTE: with the native target initialised the fixed-length row loop is vectorized, in
  // whatever registers the host's widest vectors (or LLVM's preferred width for it) are.
  const std::string& assembly = binary.artifacts.at("kernel.s");
  bool x86 = clang.cpu_target().triple.rfind("x86_64", 0) == 0;
  if (x86) {
    EXPECT_TRUE(std::regex_search(assembly, std::regex(R"(\bv?mov(u|a)ps\s+%?[xyz]mm)")) ||
                std::regex_search(assembly, std::regex(R"(\bv?movups\s.*%[xyz]mm)")))
        << "the row loop is vectorized";
  }
  EXPECT_NE(clang.identity().find("cpu=" + clang.cpu_target().cpu + " "), std::string::npos);
}

TEST(ClangCompile, FailureInAHeaderShowsThatHeader) {
  ClangCompiler clang;
  KernelSpec spec = kernels::dispatch_spec(true, DType::kFloat32, 64, 2, true, Target::cpu());
  Source source = generate_source(spec);
  // Instantiate the template with an invalid vec: the static_assert in the header fires.
  std::string& text = source.text;
  text.replace(text.find(", 1>("), 5, ", 2>(");
  try {
    clang.compile(spec, source);
    FAIL() << "expected a CompileError";
  } catch (const CompileError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("--- switchyard/cpu/dispatch_encode.hpp ---"), std::string::npos) << what;
    EXPECT_NE(what.find("the CPU template leaves vectorization to the compiler"), std::string::npos) << what;
    EXPECT_NE(what.find("-O3"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace switchyard
