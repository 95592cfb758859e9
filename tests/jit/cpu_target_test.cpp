// The CPU JIT compiles for any host LLVM 16 can target, whether or not it knows the CPU's name,
// and SWITCHYARD_CPU picks a CPU for a fleet's shared cache; the templates compile cleanly for every
// x86-64 vector width and, from this machine, for AArch64's NEON.
#include <gtest/gtest.h>

#include <algorithm>
#include <initializer_list>
#include <regex>
#include <set>
#include <sstream>

#include "core/error.h"
#include "jit/clang_compiler.h"
#include "jit/kernels/elementwise.h"
#include "jit/kernels/gemm.h"
#include "runtime/context.h"
#include "runtime/cpu_device.h"
#include "runtime/model_config.h"
#include "tests/support/test_support.h"

namespace switchyard {
namespace {

bool host_is_x86() {
  return HostCpu::detect().triple.rfind("x86_64", 0) == 0;
}

// True when the assembly holds at least one packed (vector) floating-point or integer move,
// whatever the register width: xmm, ymm and zmm on x86-64, q or v registers on AArch64.
bool has_vector_code(const std::string& assembly) {
  static const std::regex x86(R"(\bv?mov(u|a)p[sd]\b|\bv?movdq[au](8|16|32|64)?\b|\bv?(add|mul|fmadd\w*)p[sd]\b)");
  static const std::regex arm(R"(\bq[0-9]+\b|\bv[0-9]+\.(4s|2d|8h)\b)");
  return std::regex_search(assembly, x86) || std::regex_search(assembly, arm);
}

// The most distinct registers any one function of `assembly` accumulates NEON FMAs of four floats
// into: a register block's accumulators (registers spilled to the stack would not count).
size_t fma_accumulators(const std::string& assembly) {
  static const std::regex fmla(R"(\bfmla\s+v([0-9]+)\.4s)");
  size_t most = 0;
  std::set<int> in_function;
  std::istringstream lines(assembly);
  for (std::string line; std::getline(lines, line);) {
    if (line.find(".cfi_startproc") != std::string::npos) in_function.clear();
    std::smatch match;
    if (std::regex_search(line, match, fmla)) in_function.insert(std::stoi(match[1]));
    most = std::max(most, in_function.size());
  }
  return most;
}

// tiny.json's forward, backward and SGD kernels in float32 and bfloat16.
ModelConfig tiny_training_config() {
  ModelConfig config = ModelConfig::load(testing::source_dir() + "/examples/models/tiny.json");
  config.training = true;
  config.dtypes = {DType::kFloat32, DType::kBFloat16};
  return config;
}

// Compiles out = 0.5 * x with `compiler` and runs it on the CPU: the code loads and computes.
void compile_and_run_scale(const ClangCompiler& compiler) {
  KernelSpec spec = kernels::elementwise_spec(DType::kFloat32, kernels::kEwScale, kernels::kActNone, Target::cpu());
  Binary binary = compiler.compile(spec, generate_source(spec));
  EXPECT_TRUE(has_vector_code(binary.artifacts.at("kernel.s"))) << "the element-wise loop is vectorized";
  CpuDeviceOptions one_thread;
  one_thread.threads = 1;
  CpuDevice cpu(one_thread);
  auto kernel = cpu.load(binary);
  std::vector<float> x(1000), out(1000, -1.0f);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) - 300.0f;
  kernels::ElementwiseArgs args{};
  args.x = x.data();
  args.out = out.data();
  args.count = static_cast<long>(x.size());
  args.scale = 0.5;
  void* params[] = {&args};
  cpu.launch(*kernel, LaunchConfig{}, params);
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(out[i], 0.5f * x[i]) << "element " << i;
}

TEST(CpuTarget, KnownHostKeepsItsNameAndFeatures) {
  HostCpu host = HostCpu::detect();
  CpuTarget target = resolve_cpu_target(host, "");
  std::string features;
  for (const auto& [name, present] : host.features)
    if (present) features += (features.empty() ? "+" : ",+") + name;
  EXPECT_EQ(target.feature_string(), features);
  EXPECT_TRUE(target.missing_on_host.empty());
  if (host.name != "generic") {
    EXPECT_EQ(target.cpu, host.name);
  }
}

TEST(CpuTarget, UnknownHostCpuCompilesAndRunsAKernel) {
  // What LLVM 16 reports on a CPU newer than itself (AMD Zen 5): "generic", which clang refuses
  // as an x86-64 -target-cpu. Also a name no LLVM has ever known.
  for (const char* unknown : {"generic", "znver9"}) {
    HostCpu host = HostCpu::detect();
    host.name = unknown;
    CpuTarget target = resolve_cpu_target(host, "");
    EXPECT_EQ(target.cpu, host_is_x86() ? "x86-64" : "generic") << unknown;
    EXPECT_EQ(target.feature_string(), resolve_cpu_target(HostCpu::detect(), "").feature_string())
        << "the host's features are kept: they decide the code's quality";
    EXPECT_NE(target.reason.find(unknown), std::string::npos) << target.reason;
    ClangCompiler compiler(target);
    EXPECT_NE(compiler.identity().find("cpu=" + target.cpu + " "), std::string::npos) << compiler.identity();
    compile_and_run_scale(compiler);
  }
}

TEST(CpuTarget, RequestedCpuCompilesForExactlyItsFeatures) {
  if (!host_is_x86()) GTEST_SKIP() << "x86-64 CPU names";
  CpuTarget v3 = resolve_cpu_target(HostCpu::detect(), "x86-64-v3");
  EXPECT_EQ(v3.cpu, "x86-64-v3");
  std::string features = v3.feature_string();
  EXPECT_NE(features.find("+avx2"), std::string::npos) << features;
  EXPECT_NE(features.find("+fma"), std::string::npos) << features;
  EXPECT_EQ(features.find("+avx512f"), std::string::npos) << features;
  ClangCompiler compiler(v3);
  EXPECT_NE(compiler.identity().find("cpu=x86-64-v3 features=" + features), std::string::npos);
  if (compiler.why_kernels_cannot_run_here().empty()) compile_and_run_scale(compiler);
}

// Every kernel a sample config trains with compiles for each x86-64 level a fleet may name (SSE's
// 16-byte vectors, AVX2's 32, AVX-512's 64, and this host) without a warning: the templates' vector
// code is meant for every width, and a warning in the JIT's log reaches every user's stderr.
TEST(CpuTarget, TrainingKernelsCompileWithoutWarningsForEveryX86Level) {
  if (!host_is_x86()) GTEST_SKIP() << "x86-64 CPU names";
  const ModelConfig config = tiny_training_config();
  for (const char* cpu : {"x86-64", "x86-64-v3", "x86-64-v4", ""}) {
    const CpuTarget target = resolve_cpu_target(HostCpu::detect(), cpu);
    const ClangCompiler compiler(target);
    size_t compiled = 0;
    for (const KernelSpec& spec : kernel_set(config, target.kernel_target()).specs) {
      const Binary binary = compiler.compile(spec, generate_source(spec));
      EXPECT_EQ(binary.log.find("warning"), std::string::npos) << target.cpu << " " << spec.to_string() << ":\n"
                                                               << binary.log;
      ++compiled;
    }
    EXPECT_GT(compiled, 40u) << target.cpu;
  }
}

// bfloat16 GEMMs for `target`, every pass (forward, data and weight gradient): the spec takes the
// kernel whose bool parameter is `kernel` (and the AMX tiles exactly where `amx`), and it compiles
// without a warning to code holding each of `instructions`, with every micro-kernel's reduction
// loop (paced_steps) inlined where its accumulators live: called, it kept them in memory.
void expect_bfloat16_passes_compile_to(const CpuTarget& target, const char* kernel, bool amx,
                                       std::initializer_list<const char*> instructions) {
  const ClangCompiler compiler(target);
  for (const auto& [trans_a, trans_b] :
       std::vector<std::pair<bool, bool>>{{false, false}, {false, true}, {true, false}}) {
    const KernelSpec spec =
        kernels::gemm_spec({.dtype = DType::kBFloat16, .n = 200, .k = 301, .trans_b = trans_b, .trans_a = trans_a},
                           target.kernel_target());
    ASSERT_TRUE(spec.bool_param(kernel)) << spec.to_string();
    EXPECT_EQ(spec.bool_param("amx"), amx) << spec.to_string();
    const Binary binary = compiler.compile(spec, generate_source(spec));
    EXPECT_EQ(binary.log.find("warning"), std::string::npos) << spec.to_string() << ":\n" << binary.log;
    const std::string& assembly = binary.artifacts.at("kernel.s");
    for (const char* instruction : instructions)
      EXPECT_NE(assembly.find(instruction), std::string::npos) << spec.to_string() << ": no " << instruction;
    EXPECT_EQ(assembly.find("paced_steps"), std::string::npos) << spec.to_string() << ": a reduction loop is called";
  }
}

// bfloat16 GEMMs for a CPU with AMX-BF16 (Sapphire Rapids, named from any x86 host: this is the
// check the AMX kernel gets where the host has no AMX; gemm_cpu_test runs it where it has) take
// the tile kernel in every pass, and it compiles to tile instructions without a warning.
TEST(CpuTarget, Bfloat16GemmsCompileToAmxTilesForSapphireRapids) {
  if (!host_is_x86()) GTEST_SKIP() << "x86-64 CPU names";
  const CpuTarget target = resolve_cpu_target(HostCpu::detect(), "sapphirerapids");
  EXPECT_TRUE(target.kernel_target().has(kCpuAmxBf16));
  expect_bfloat16_passes_compile_to(target, "amx", true,
                                    {"ldtilecfg", "tileloadd", "tdpbf16ps", "tilestored", "tilerelease"});
}

// bfloat16's dot products are chosen by the core: AMD's Zen 4 runs them at the FMA's rate, so its
// three passes pack pairs and compile to vdpbf16ps (where no Zen 4 runs, this is the check that
// kernel gets); Intel's Cooper Lake runs them at half the FMA's flops and converts its operands.
TEST(CpuTarget, Bfloat16DotProductsAreChosenForZen4NotCooperLake) {
  if (!host_is_x86()) GTEST_SKIP() << "x86-64 CPU names";
  const CpuTarget zen4 = resolve_cpu_target(HostCpu::detect(), "znver4");
  EXPECT_TRUE(zen4.kernel_target().has(kCpuFastBf16Dot));
  expect_bfloat16_passes_compile_to(zen4, "bf16_dot", false, {"vdpbf16ps"});
  const CpuTarget cooper_lake = resolve_cpu_target(HostCpu::detect(), "cooperlake");
  EXPECT_TRUE(cooper_lake.kernel_target().has(kCpuBf16Dot));
  EXPECT_FALSE(cooper_lake.kernel_target().has(kCpuFastBf16Dot));
  EXPECT_FALSE(kernels::gemm_spec({.dtype = DType::kBFloat16, .n = 200, .k = 301}, cooper_lake.kernel_target())
                   .bool_param("bf16_dot"));
}

// A Zen 5 host, which LLVM 16 does not know: its kernels are compiled for "x86-64" with the host's
// features (Zen 4's and more), take the dot products, and keep their accumulators in registers.
// clang had declined to inline the dot-product kernel's reduction loop (for znver4 too) and kept
// them in memory: 190 GFLOP/s against 600-670 inlined, measured on a Zen 5 VM.
TEST(CpuTarget, Bfloat16DotProductsKeepTheirAccumulatorsInRegistersOnAnUnknownAmdCpu) {
  if (!host_is_x86()) GTEST_SKIP() << "x86-64 CPU names";
  HostCpu zen5 = HostCpu::detect();
  zen5.name = "znver5";
  zen5.features.clear();
  for (const std::string& feature : resolve_cpu_target(HostCpu::detect(), "znver4").features)
    zen5.features[feature.substr(1)] = true;
  const CpuTarget target = resolve_cpu_target(zen5, "");
  ASSERT_EQ(target.cpu, "x86-64") << target.reason;
  EXPECT_TRUE(target.kernel_target().has(kCpuFastBf16Dot));
  expect_bfloat16_passes_compile_to(target, "bf16_dot", false, {"vdpbf16ps"});
}

// The templates' 16-byte vector code is NEON on AArch64: every training kernel of tiny compiles
// for an Arm server core from this machine (LLVM carries every target) without a warning, and the
// GEMM's micro-kernel is NEON FMAs on four floats into an 8 x 3 block of the 32 registers. They
// cannot run here; this is the check the AArch64 path gets without an Arm machine (the block's
// arithmetic runs in gemm_cpu_test's AArch64RegisterBlockComputesOnThisHost).
TEST(CpuTarget, TrainingKernelsCompileForAArch64Neon) {
  HostCpu arm;
  arm.triple = "aarch64-unknown-linux-gnu";
  arm.name = "neoverse-n1";
  arm.features = {{"neon", true}, {"fp-armv8", true}, {"crc", true}, {"lse", true}, {"sve", false}};
  const CpuTarget target = resolve_cpu_target(arm, "");
  EXPECT_EQ(target.cpu, "neoverse-n1");
  EXPECT_EQ(target.vector_bytes(), 16);
  const ClangCompiler compiler(target);
  const ModelConfig config = tiny_training_config();
  static const std::regex neon_fma(R"(\bfmla\s+v[0-9]+\.4s)");
  size_t gemms = 0;
  for (const KernelSpec& spec : kernel_set(config, target.kernel_target()).specs) {
    const Binary binary = compiler.compile(spec, generate_source(spec));
    EXPECT_EQ(binary.log.find("warning"), std::string::npos) << spec.to_string() << ":\n" << binary.log;
    EXPECT_EQ(binary.artifacts.at("kernel.o").substr(0, 4),
              "\x7f"
              "ELF")
        << spec.to_string();
    if (spec.family != "gemm" || spec.int_param("n") < 16) continue;  // a gate's few columns are dot products
    EXPECT_EQ(spec.int_param("row_tile"), 8) << spec.to_string();
    EXPECT_EQ(spec.int_param("tile_vecs"), 3) << spec.to_string();
    const std::string& assembly = binary.artifacts.at("kernel.s");
    EXPECT_TRUE(std::regex_search(assembly, neon_fma)) << spec.to_string();
    EXPECT_GE(fma_accumulators(assembly), 24u) << spec.to_string() << ": the 8 x 3 block's accumulators";
    ++gemms;
  }
  EXPECT_GT(gemms, 4u);
}

TEST(CpuTarget, RequestedCpuTheHostCannotRunCompilesButSaysWhy) {
  if (!host_is_x86()) GTEST_SKIP() << "x86-64 CPU names";
  HostCpu host = HostCpu::detect();
  host.features["avx512f"] = false;  // a host without AVX-512 asked for x86-64-v4
  ClangCompiler compiler(resolve_cpu_target(host, "x86-64-v4"));
  EXPECT_NE(compiler.why_kernels_cannot_run_here().find("+avx512f"), std::string::npos)
      << compiler.why_kernels_cannot_run_here();
  EXPECT_NE(compiler.why_kernels_cannot_run_here().find("SWITCHYARD_CPU=x86-64-v4"), std::string::npos);
  KernelSpec spec = kernels::elementwise_spec(DType::kFloat32, kernels::kEwScale, kernels::kActNone, Target::cpu());
  EXPECT_FALSE(compiler.compile(spec, generate_source(spec)).artifacts.at("kernel.o").empty());
}

TEST(CpuTarget, UnknownRequestedCpuIsAClearError) {
  try {
    resolve_cpu_target(HostCpu::detect(), "pentium-9000");
    FAIL() << "expected a UserError";
  } catch (const UserError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("SWITCHYARD_CPU='pentium-9000'"), std::string::npos) << what;
    EXPECT_NE(what.find("expected host or one of"), std::string::npos) << what;
  }
}

TEST(CpuTarget, TheContextRefusesToRunKernelsTheHostCannotRun) {
  if (!host_is_x86()) GTEST_SKIP() << "x86-64 CPU names";
  // A CPU with a feature this host lacks: Intel hosts lack AMD's sse4a, AMD hosts Intel's AMX.
  std::string foreign;
  for (const char* name : {"x86-64-v4", "znver4", "graniterapids"}) {
    if (!resolve_cpu_target(HostCpu::detect(), name).missing_on_host.empty()) {
      foreign = name;
      break;
    }
  }
  if (foreign.empty()) GTEST_SKIP() << "this host has every feature of x86-64-v4, znver4 and graniterapids";
  testing::TempDir dir;
  Settings settings;
  settings.cache_dir = dir.path();
  settings.cpu = foreign;
  Context context(settings);
  KernelSpec spec = kernels::elementwise_spec(DType::kFloat32, kernels::kEwScale, kernels::kActNone, Target::cpu());
  try {
    context.kernel(context.cpu(), spec);
    FAIL() << "expected a UserError for SWITCHYARD_CPU=" << foreign;
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("this host lacks"), std::string::npos) << e.what();
  }
  EXPECT_EQ(context.counters().store.compiles, 0u) << "nothing was compiled for a kernel that cannot run";
}

// A fleet's shared cache works only if every machine asks for the same specs: the GEMM's vector
// width follows the CPU compiled for, not the host it is chosen on.
TEST(CpuTarget, TheCpuCompiledForDecidesTheGemmVectors) {
  if (!host_is_x86()) GTEST_SKIP() << "x86-64 CPU names";
  const kernels::GemmShape shape{.dtype = DType::kFloat32, .n = 256, .k = 64};
  for (const auto& [cpu, bytes] :
       std::vector<std::pair<std::string, int>>{{"x86-64", 16}, {"x86-64-v3", 32}, {"x86-64-v4", 64}}) {
    testing::TempDir dir;
    Settings settings;
    settings.cache_dir = dir.path();
    settings.cpu = cpu;
    Context context(settings);
    const Target target = context.cpu().target();
    EXPECT_EQ(target.vector_bytes, bytes) << cpu;
    KernelSpec spec = kernels::gemm_spec(shape, target);
    EXPECT_EQ(spec.int_param("vec_bytes"), bytes) << cpu;
    EXPECT_EQ(spec.int_param("row_tile"), 6) << cpu;
    EXPECT_EQ(spec.int_param("tile_vecs"), bytes == 64 ? 4 : 2) << cpu;
    // A requested CPU's L2 is taken as 1 MB: 512 rows of 256 floats fill half of it.
    EXPECT_EQ(spec.int_param("group_rows"), 510) << cpu;
  }
  CpuTarget host = resolve_cpu_target(HostCpu::detect(), "");
  testing::TempDir dir;
  Settings settings;
  settings.cache_dir = dir.path();
  Context context(settings);
  EXPECT_EQ(context.cpu().target().vector_bytes, host.vector_bytes()) << "unset: this host's widest vectors";
}

}  // namespace
}  // namespace switchyard
