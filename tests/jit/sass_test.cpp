// The CUDA templates' machine code for Hopper, read without a GPU (nvdisasm 13 from PyPI, which
// scripts/setup-deps installs into .tools/): every kernel the sample configs need, forward and
// training, keeps to registers (no local-memory loads or stores, no spills in ptxas's report),
// and the tensor-core families really issue tensor-core instructions (HGMMA and TMA for the
// Hopper GEMM, TF32 included); the SIMT GEMM (and a float32 Mixtral layer's three passes on it) reads shared
// memory 16 bytes at a time, float32 global memory too, in at most 128 registers.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <regex>
#include <thread>
#include <vector>

#include "core/fs.h"
#include "jit/kernels/gemm.h"
#include "runtime/context.h"
#include "runtime/model_config.h"
#include "tests/support/test_support.h"

namespace switchyard {
namespace {

// SASS of `cubin`, through a file in `dir` (one directory per thread).
std::string disassemble(const std::string& cubin, const testing::TempDir& dir) {
  const std::string path = dir / "kernel.cubin";
  fs::write_file(path, cubin);
  testing::CommandResult r = testing::run_command(std::string("'") + SY_NVDISASM + "' -c '" + path + "'");
  return r.exit_code == 0 ? r.output : "nvdisasm failed: " + r.output;
}

TEST(Sass, SampleConfigKernelsForSm90aKeepToRegistersAndUseTheirUnits) {
  const Target hopper = Target::cuda(90, true);
  const std::regex local_memory(R"(\b(LDL|STL)(\.\S+)?\s)");
  const std::regex spills(R"(([1-9][0-9]*) bytes spill (stores|loads))");
  std::vector<KernelSpec> specs;
  for (const char* model : {"tiny.json", "mixtral-8x7b.json"}) {
    ModelConfig config = ModelConfig::load(testing::source_dir() + "/examples/models/" + model);
    config.training = true;
    for (const KernelSpec& spec : kernel_set(config, hopper).specs) specs.push_back(spec);
  }
  // A float32 layer without TF32 at Mixtral's dims: its three expert GEMM passes on CUDA cores.
  for (const kernels::GemmShape& shape :
       {kernels::GemmShape{.n = 14336, .k = 4096}, kernels::GemmShape{.n = 4096, .k = 14336, .trans_b = true},
        kernels::GemmShape{.n = 4096, .k = 14336, .trans_a = true}})
    specs.push_back(kernels::gemm_spec(shape, hopper));
  // A float32 layer with TF32 at Mixtral's dims: fc1 as stored ([H, M], K-major) with its bias and
  // GELU, fc2's data gradient (W2 [H, M] read as W^T) and fc2's weight gradient (its operands
  // transposed ahead), on wgmma; fc2 (N-major W) on mma.sync.
  size_t tf32_wgmma = 0;
  for (const kernels::GemmShape& shape :
       {kernels::GemmShape{
            .n = 14336, .k = 4096, .trans_b = true, .bias = true, .activation = kernels::kActGelu, .allow_tf32 = true},
        kernels::GemmShape{.n = 14336,
        .k = 4096,
        .trans_b = true,
        .activation = kernels::kActGeluGrad,
        .allow_tf32 = true,
        .grouped = true},
        kernels::GemmShape{.n = 4096, .k = 14336, .allow_tf32 = true},
        kernels::GemmShape{.n = 4096, .k = 14336, .allow_tf32 = true, .trans_a = true}}) {
    specs.push_back(kernels::gemm_spec(shape, hopper));
    tf32_wgmma += specs.back().family == "gemm_wgmma";
  }
  EXPECT_EQ(tf32_wgmma, 3u) << "TF32's K-major forms run on wgmma";
  // NOTE: nvdisasm dominates the time: one process per kernel, as many at once as there are cores.
  std::vector<Binary> binaries;
  for (const KernelSpec& spec : specs) binaries.push_back(Context::global().store().obtain(spec).binary);
  std::vector<std::string> sass(specs.size());
  std::atomic<size_t> next{0};
  std::vector<std::thread> workers;
  for (unsigned t = 0; t < std::max(1u, std::thread::hardware_concurrency()); ++t) {
    workers.emplace_back([&] {
      testing::TempDir dir;
      for (size_t i = next++; i < specs.size(); i = next++)
        sass[i] = disassemble(binaries[i].artifacts.at("kernel.cubin"), dir);
    });
  }
  for (auto& w : workers) w.join();
  size_t tensor_core = 0, simt = 0;
  const std::regex registers(R"(Used ([0-9]+) registers)");
  for (size_t i = 0; i < specs.size(); ++i) {
    const KernelSpec& spec = specs[i];
    SCOPED_TRACE(spec.to_string());
    const std::string& log = binaries[i].log;
    ASSERT_NE(log.find("bytes spill stores"), std::string::npos) << "ptxas -v reports spills: " << log;
    ASSERT_NE(sass[i].find(".text."), std::string::npos) << "nvdisasm printed no code: " << sass[i].substr(0, 500);
    // (The SIMT GEMM's 4-byte spill for 16-bit types with N under one tile went away when the
    // grouped row count became a clamp: no exception is left.)
    EXPECT_FALSE(std::regex_search(log, spills)) << log;
    EXPECT_FALSE(std::regex_search(sass[i], local_memory)) << "local-memory traffic";
    if (spec.family == "gemm_wgmma") {
      // warpgroup MMAs from shared memory, tiles in and out by the copy engine, registers moved
      // to the consumer warpgroups
      for (const char* unit : {"HGMMA.64x", "UTMALDG.3D", "UTMASTG.3D", "USETMAXREG"})
        EXPECT_NE(sass[i].find(unit), std::string::npos) << "the Hopper GEMM without " << unit;
      ++tensor_core;
    }
    if (spec.family == "gemm_simt") {
      // 16-byte shared-memory reads of both operands, and registers for two blocks a multiprocessor
      EXPECT_NE(sass[i].find("LDS.128"), std::string::npos) << "the SIMT GEMM without 16-byte shared loads";
      if (spec.dtype_param("dtype") == DType::kFloat32 && spec.int_param("tile") == 128) {
        EXPECT_NE(sass[i].find("LDG.E.128"), std::string::npos) << "float32 operands without 16-byte global loads";
      }
      std::smatch used;
      ASSERT_TRUE(std::regex_search(log, used, registers)) << log;
      EXPECT_LE(std::stoi(used[1]), 128) << log;
      ++simt;
    }
    if (spec.family == "gemm_mma" || spec.family == "gemm_tf32") {
      EXPECT_NE(sass[i].find("HMMA"), std::string::npos) << "a tensor-core family without tensor-core instructions";
      ++tensor_core;
    }
  }
  EXPECT_GT(specs.size(), 100u);
  EXPECT_GT(tensor_core, 0u) << "the sample configs exercise the tensor-core GEMMs";
  EXPECT_GT(simt, 0u) << "the sample configs exercise the SIMT GEMM (grouped weight gradients)";
}

}  // namespace
}  // namespace switchyard
