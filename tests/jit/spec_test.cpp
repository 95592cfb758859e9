// KernelSpec text form, validation and source generation.
#include <gtest/gtest.h>

#include <switchyard/common/launch_rules.h>

#include <algorithm>

#include "core/error.h"
#include "jit/kernels/cast.h"
#include "jit/kernels/dispatch.h"
#include "jit/kernels/elementwise.h"
#include "jit/kernels/gating.h"
#include "jit/kernels/gemm.h"
#include "jit/source.h"
#include "runtime/model_config.h"
#include "tests/support/test_support.h"

namespace switchyard {
namespace {

TEST(KernelSpec, TextRoundTripsForEveryTarget) {
  for (const char* target : {"cpu", "sm_80", "sm_90", "sm_90a"}) {
    Target t = Target::parse(target);
    DType dtype = t.is_cpu() ? DType::kFloat64 : DType::kBFloat16;
    KernelSpec spec = kernels::dispatch_spec(true, dtype, 4096, 2, false, t);
    std::string text = spec.to_string();
    EXPECT_EQ(KernelSpec::parse(text), spec) << text;
    EXPECT_EQ(KernelSpecHash{}(KernelSpec::parse(text)), KernelSpecHash{}(spec));
  }
  EXPECT_EQ(kernels::dispatch_spec(false, DType::kFloat32, 64, 1, true, Target::cuda(90)).to_string(),
            "combine_decode<dtype=float32,model_dim=64,top_k=1,apply_gate=true,vec=4>@sm_90");
}

TEST(Target, WhichCodeRunsOnWhichDevice) {
  const Target sm90 = Target::parse("sm_90"), sm90a = Target::parse("sm_90a"), sm80 = Target::parse("sm_80");
  EXPECT_TRUE(sm90.runs_on(sm90a)) << "plain sm_90 CUBINs stay valid on a Hopper device (which reports sm_90a)";
  EXPECT_TRUE(sm90a.runs_on(sm90a));
  EXPECT_FALSE(sm90a.runs_on(sm90)) << "wgmma code needs a device that reports the arch-specific target";
  EXPECT_FALSE(sm80.runs_on(sm90a)) << "a CUBIN runs on its own compute capability only";
  EXPECT_FALSE(sm90.runs_on(sm80));
  EXPECT_TRUE(Target::cpu().runs_on(Target::cpu()));
  EXPECT_FALSE(Target::cpu().runs_on(sm90a));
  EXPECT_FALSE(sm90a.runs_on(Target::cpu()));
}

// Each GEMM family's launch comes from its own tiles: on CUDA one block per output tile of every
// batch (128x128, and the SIMT kernel's 64x64 where N or K is at most 64; over [K, N] for the weight
// gradient); on the CPU every batch gets at least one block and no more than its row tiles.
TEST(GemmLaunch, EveryOutputTileGetsABlockInEveryFamily) {
  using kernels::GemmShape;
  const kernels::GemmProblem problem{.batch = 3, .rows = 200, .max_rows = 150, .k = 96, .n = 256, .parallelism = 132};
  struct Case {
    GemmShape shape;
    const char* family;
  };
  for (const Case& c : {Case{GemmShape{.dtype = DType::kBFloat16, .n = 256, .k = 96}, "gemm_mma"},
                        Case{GemmShape{.dtype = DType::kFloat32, .n = 256, .k = 96, .allow_tf32 = true}, "gemm_tf32"},
                        Case{GemmShape{.dtype = DType::kFloat32, .n = 256, .k = 96}, "gemm_simt"},
                        Case{GemmShape{.dtype = DType::kFloat16, .n = 256, .k = 96, .trans_a = true}, "gemm_simt"},
                        Case{GemmShape{.dtype = DType::kFloat32, .n = 64, .k = 96}, "gemm_simt"},
                        Case{GemmShape{.dtype = DType::kFloat32, .n = 8, .k = 96, .trans_a = true}, "gemm_simt"}}) {
    // plain sm_90: the families with a block per tile (HopperGridIsPersistent has sm_90a's)
    const KernelSpec spec = kernels::gemm_spec(c.shape, Target::cuda(90));
    SCOPED_TRACE(spec.to_string());
    ASSERT_EQ(spec.family, c.family);
    const kernels::GemmTileShape tile = kernels::gemm_tile_shape(spec);
    const int64_t out_rows = c.shape.trans_a ? problem.k : problem.rows;
    const int64_t tiles = ((out_rows + tile.m - 1) / tile.m) * ((c.shape.n + tile.n - 1) / tile.n);
    kernels::GemmProblem p = problem;
    p.n = c.shape.n;
    const LaunchConfig config = kernels::gemm_launch_config(spec, p);
    EXPECT_EQ(config.grid, problem.batch * tiles);
    EXPECT_EQ(config.block, static_cast<unsigned>(kernels::kGemmThreads));
    EXPECT_EQ(tile.m * tile.n, c.shape.n <= 64 || c.shape.k <= 64 ? 64 * 64 : 128 * 128);
  }
  for (bool trans_a : {false, true}) {
    const KernelSpec spec = kernels::gemm_spec(GemmShape{.n = 256, .k = 96, .trans_a = trans_a}, Target::cpu(64));
    const int64_t row_tiles = ((trans_a ? problem.k : problem.max_rows) + 5) / 6;  // row_tile 6 with 64-byte vectors
    const int64_t col_tiles = problem.n / 64;                                      // 4 zmm of floats
    EXPECT_EQ(kernels::gemm_tile_shape(spec).n, 64);
    for (unsigned threads : {1u, 2u, 64u}) {
      kernels::GemmProblem p = problem;
      p.parallelism = threads;
      const unsigned grid = kernels::gemm_launch_config(spec, p).grid;
      EXPECT_GE(grid, problem.batch) << threads << " threads";
      EXPECT_LE(grid, problem.batch * row_tiles * col_tiles) << threads << " threads";
      EXPECT_EQ(grid % problem.batch, 0u) << "the same split for every batch";
    }
  }
}

// A small batch at Mixtral dims on 64 threads: 8 experts of 16 rows are 3 row tiles each, too few
// for the threads; the blocks take column ranges too, so every thread has work.
TEST(GemmLaunch, CpuBlocksSplitColumnsWhereRowsAreFew) {
  const KernelSpec spec = kernels::gemm_spec({.dtype = DType::kBFloat16, .n = 14336, .k = 4096}, Target::cpu(64));
  const kernels::GemmProblem p{.batch = 8, .rows = 16, .max_rows = 16, .k = 4096, .n = 14336, .parallelism = 64};
  const unsigned grid = kernels::gemm_launch_config(spec, p).grid;
  const int per_batch = static_cast<int>(grid / 8);
  const kernels::GemmCpuSplit split = kernels::gemm_cpu_split(per_batch, 3, 14336 / 64);
  EXPECT_EQ(split.rows, 3);
  EXPECT_GE(8 * split.rows * split.cols, 64) << "busy blocks for 64 threads";
  EXPECT_LE(split.rows * split.cols, per_batch);
  // Enough rows: rows only, as before (every block reads all of B for its rows).
  EXPECT_EQ(kernels::gemm_cpu_split(4, 170, 224).cols, 1);
  EXPECT_EQ(kernels::gemm_cpu_split(4, 170, 224).rows, 4);
  // Fewer column tiles than asked for: no empty column ranges; no rows: one range of each.
  EXPECT_EQ(kernels::gemm_cpu_split(64, 2, 3).cols, 3);
  EXPECT_EQ(kernels::gemm_cpu_split(8, 0, 0).rows, 1);
  EXPECT_EQ(kernels::gemm_cpu_split(8, 0, 0).cols, 1);
}

// The features a CPU target's LLVM list names become the bits kernel families ask about; a target
// that names its vectors speaks for itself, one that does not is this host.
TEST(Target, CpuFeaturesComeFromTheLlvmListOrTheHost) {
  const std::string x86 = "x86_64-pc-linux-gnu", arm = "aarch64-unknown-linux-gnu";
  EXPECT_EQ(cpu_features_of(x86, {"+avx2", "+avx512bf16", "+avx512f"}), kCpuBf16Dot | kCpu32VectorRegisters);
  EXPECT_EQ(cpu_features_of(x86, {"+avx2", "+avx512f", "-avx512bf16"}), static_cast<unsigned>(kCpu32VectorRegisters));
  EXPECT_EQ(cpu_features_of(x86, {"+avx2", "-avx512f"}), 0u);
  EXPECT_EQ(cpu_features_of(x86, {}), 0u);
  // AMX's bfloat16 tiles need both the tile registers and the bfloat16 instruction.
  EXPECT_EQ(cpu_features_of(x86, {"+amx-tile", "+amx-bf16", "+avx512bf16", "+avx512f"}),
            kCpuAmxBf16 | kCpuBf16Dot | kCpu32VectorRegisters);
  EXPECT_EQ(cpu_features_of(x86, {"+amx-tile", "-amx-bf16"}), 0u);
  // AMD's cores (SSE4a is theirs alone) run the dot products at the FMA's rate; Intel's do not.
  EXPECT_EQ(cpu_features_of(x86, {"+avx512bf16", "+avx512f", "+sse4a"}),
            kCpuBf16Dot | kCpu32VectorRegisters | kCpuFastBf16Dot);
  EXPECT_EQ(cpu_features_of(x86, {"+avx512f", "+sse4a"}), static_cast<unsigned>(kCpu32VectorRegisters));
  EXPECT_EQ(cpu_features_of(x86, {"+avx512bf16", "+avx512f", "-sse4a"}), kCpuBf16Dot | kCpu32VectorRegisters);
  EXPECT_EQ(cpu_features_of(x86, {"+amx-bf16"}), 0u);
  // Every AArch64 core has 32 vector registers, whatever its feature list says.
  EXPECT_EQ(cpu_features_of(arm, {"+neon"}), static_cast<unsigned>(kCpu32VectorRegisters));
  EXPECT_EQ(cpu_features_of(arm, {}), static_cast<unsigned>(kCpu32VectorRegisters));
  EXPECT_TRUE(Target::cpu(64, 0, kCpuBf16Dot).has(kCpuBf16Dot));
  EXPECT_FALSE(Target::cpu(64, 0, 0).has(kCpuBf16Dot));
#if defined(__x86_64__)
  EXPECT_EQ(Target::cpu().has(kCpuBf16Dot), __builtin_cpu_supports("avx512bf16") != 0);
  EXPECT_EQ(Target::cpu().has(kCpuFastBf16Dot), __builtin_cpu_supports("avx512bf16") && __builtin_cpu_is("amd"));
  EXPECT_EQ(Target::cpu().has(kCpu32VectorRegisters), __builtin_cpu_supports("avx512f") != 0);
  EXPECT_EQ(Target::cpu().cpu_vector_bytes(), __builtin_cpu_supports("avx512f") ? 64
                                              : __builtin_cpu_supports("avx")   ? 32
                                                                                : 16);
#endif
  EXPECT_EQ(Target::cpu(32, 123456).cpu_vector_bytes(), 32);
  EXPECT_EQ(Target::cpu(32, 123456).cpu_l2_bytes(), 123456);
  EXPECT_EQ(Target::cpu().cpu_l2_bytes(), host_l2_bytes());
}

// bfloat16 on a CPU that runs AVX512_BF16's dot products at the FMA's rate (AMD's; the target says
// so) takes the dot-product kernel, which packs 16 bits a step and so groups twice the rows in the
// same half of the L2; other dtypes, narrower vectors, CPUs without them and Intel's, which run
// them at half the FMA's flops, convert to float. A spec asking for dot products elsewhere is refused.
TEST(GemmSelect, CpuBfloat16TakesDotProductsWhereTheTargetRunsThemFast) {
  const long l2 = 1L << 20;
  auto spec_for = [&](DType dtype, int vector_bytes, bool bf16_dot) {
    return kernels::gemm_spec({.dtype = dtype, .n = 256, .k = 512},
                              Target::cpu(vector_bytes, l2, bf16_dot ? kCpuBf16Dot | kCpuFastBf16Dot : 0u));
  };
  const KernelSpec dot = spec_for(DType::kBFloat16, 64, true);
  EXPECT_TRUE(dot.bool_param("bf16_dot"));
  EXPECT_EQ(dot.int_param("group_rows"), 1020);  // 1 MB / 2 / (256 steps * 2 bytes), in tiles of 6
  EXPECT_NO_THROW(validate_spec(dot));
  const KernelSpec converted = spec_for(DType::kBFloat16, 64, false);
  EXPECT_FALSE(converted.bool_param("bf16_dot"));
  EXPECT_EQ(converted.int_param("group_rows"), 510);
  EXPECT_FALSE(spec_for(DType::kFloat32, 64, true).bool_param("bf16_dot"));
  EXPECT_FALSE(spec_for(DType::kFloat16, 64, true).bool_param("bf16_dot"));
  EXPECT_FALSE(spec_for(DType::kBFloat16, 32, true).bool_param("bf16_dot"));
  // Intel's dot products without AMX (Cooper Lake; Sapphire Rapids where Linux refuses the tiles).
  EXPECT_FALSE(kernels::gemm_spec({.dtype = DType::kBFloat16, .n = 256, .k = 512},
                                  Target::cpu(64, l2, kCpuBf16Dot | kCpu32VectorRegisters))
                   .bool_param("bf16_dot"));

  // A target that does not say (vector_bytes 0) is this host, features included.
  const unsigned host = host_cpu_features();
  const bool host_dot =
      host_vector_bytes() == 64 && (host & kCpuBf16Dot) != 0 && (host & (kCpuFastBf16Dot | kCpuAmxBf16)) != 0;
  EXPECT_EQ(kernels::gemm_spec({.dtype = DType::kBFloat16, .n = 256, .k = 512}, Target::cpu()).bool_param("bf16_dot"),
            host_dot);

  KernelSpec wrong = spec_for(DType::kFloat32, 64, false);
  for (auto& [name, value] : wrong.params)
    if (name == "bf16_dot") value = true;
  try {
    validate_spec(wrong);
    FAIL() << "a float32 spec with bf16_dot was accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("bf16_dot is for bfloat16 with vec_bytes 64"), std::string::npos) << e.what();
  }
}

// bfloat16 on a CPU with AMX-BF16 (and the dot products) runs on the tiles: row tiles of 16, four
// tiles of 16 columns, groups of whole row tiles; a spec asking for AMX in any other shape, or
// without the dot products' packing, is refused. Float types never use it.
TEST(GemmSelect, CpuBfloat16TakesAmxTilesWhereTheTargetHasThem) {
  const Target amx_target = Target::cpu(64, 1L << 20, kCpuAmxBf16 | kCpuBf16Dot | kCpu32VectorRegisters);
  const KernelSpec amx = kernels::gemm_spec({.dtype = DType::kBFloat16, .n = 256, .k = 512}, amx_target);
  EXPECT_TRUE(amx.bool_param("amx"));
  EXPECT_TRUE(amx.bool_param("bf16_dot"));
  EXPECT_EQ(amx.int_param("row_tile"), 16);
  EXPECT_EQ(amx.int_param("tile_vecs"), 4);
  EXPECT_EQ(kernels::gemm_tile_shape(amx).n, 64);
  EXPECT_EQ(amx.int_param("group_rows"), 1024);  // 1 MB / 2 / (256 steps * 2 bytes), in tiles of 16
  EXPECT_NO_THROW(validate_spec(amx));
  EXPECT_FALSE(kernels::gemm_spec({.dtype = DType::kFloat32, .n = 256, .k = 512}, amx_target).bool_param("amx"));
  EXPECT_FALSE(kernels::gemm_spec({.dtype = DType::kBFloat16, .n = 256, .k = 512},
                                  Target::cpu(64, 1L << 20, kCpuBf16Dot | kCpu32VectorRegisters))
                   .bool_param("amx"));
  // AMX without the dot products' instruction set (no AVX512_BF16) keeps the converted operands.
  EXPECT_FALSE(kernels::gemm_spec({.dtype = DType::kBFloat16, .n = 256, .k = 512},
                                  Target::cpu(64, 1L << 20, kCpuAmxBf16 | kCpu32VectorRegisters))
                   .bool_param("amx"));
  auto with = [&](KernelSpec spec, const std::string& param, ParamValue value) {
    for (auto& [name, old] : spec.params)
      if (name == param) old = value;
    return spec;
  };
  for (const KernelSpec& wrong :
       {with(amx, "row_tile", int64_t{6}), with(amx, "tile_vecs", int64_t{2}), with(amx, "bf16_dot", false),
        with(with(amx, "amx", false), "row_tile", int64_t{16})}) {
    try {
      validate_spec(wrong);
      ADD_FAILURE() << "accepted " << wrong.to_string();
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find("amx is for bf16_dot with row_tile 16 and tile_vecs 4"), std::string::npos)
          << e.what();
    }
  }
}

// The candidates in order on each target: wgmma where sm_90a, the dtype, the shapes and the
// operands' alignment allow, else mma.sync, else SIMT.
// The CPU GEMM's register block fills the register file of the CPU compiled for with 24
// accumulators where it has 32 registers (6 x 4 zmm; 8 x 3 q registers on AArch64) and 12 where it
// has 16 (6 x 2 ymm or xmm); a column tile is tile_vecs vectors, and A's groups are whole row tiles.
TEST(GemmSelect, CpuRegisterBlockFitsTheRegisterFile) {
  struct Case {
    int vector_bytes;
    unsigned features;
    int64_t rows, vecs, float_cols, double_cols;
  };
  for (const Case& c :
       {Case{64, kCpu32VectorRegisters, 6, 4, 64, 32}, Case{64, 0, 6, 4, 64, 32}, Case{32, 0, 6, 2, 16, 8},
        Case{16, 0, 6, 2, 8, 4}, Case{16, kCpu32VectorRegisters, 8, 3, 12, 6}}) {
    const Target target = Target::cpu(c.vector_bytes, 1L << 20, c.features);
    const KernelSpec spec = kernels::gemm_spec({.dtype = DType::kFloat32, .n = 256, .k = 512}, target);
    SCOPED_TRACE(spec.to_string());
    EXPECT_EQ(spec.int_param("row_tile"), c.rows);
    EXPECT_EQ(spec.int_param("tile_vecs"), c.vecs);
    EXPECT_EQ(kernels::gemm_tile_shape(spec).n, c.float_cols);
    EXPECT_EQ(spec.int_param("group_rows") % c.rows, 0);
    EXPECT_EQ(kernels::gemm_tile_shape(kernels::gemm_spec({.dtype = DType::kFloat64, .n = 256, .k = 512}, target)).n,
              c.double_cols);
  }
  // 1 MB / 2 / (256 steps * 4 bytes) = 512 rows: 510 in tiles of 6, 512 in tiles of 8.
  EXPECT_EQ(kernels::gemm_spec({.dtype = DType::kFloat32, .n = 256, .k = 512},
                               Target::cpu(16, 1L << 20, kCpu32VectorRegisters))
                .int_param("group_rows"),
            512);
  KernelSpec wrong = kernels::gemm_spec({.dtype = DType::kFloat32, .n = 256, .k = 512}, Target::cpu(64));
  for (auto& [name, value] : wrong.params)
    if (name == "tile_vecs") value = int64_t{5};
  EXPECT_THROW(validate_spec(wrong), UserError);
}

TEST(GemmSelect, HopperTakesWgmmaWhereItCanImplementTheShape) {
  using kernels::GemmShape;
  const Target hopper = Target::cuda(90, true);
  struct Case {
    GemmShape shape;
    Target target;
    const char* family;
    int64_t tile_n;
  };
  for (const Case& c :
       {Case{GemmShape{.dtype = DType::kBFloat16, .n = 14336, .k = 4096}, hopper, "gemm_wgmma", 256},
        Case{GemmShape{.dtype = DType::kFloat16, .n = 384, .k = 256, .trans_b = true}, hopper, "gemm_wgmma", 128},
        Case{GemmShape{.dtype = DType::kBFloat16, .n = 256, .k = 64}, Target::cuda(90), "gemm_mma", 0},  // plain sm_90
        Case{GemmShape{.dtype = DType::kBFloat16, .n = 256, .k = 64}, Target::cuda(80), "gemm_mma", 0},
        Case{GemmShape{.dtype = DType::kBFloat16, .n = 256, .k = 200}, hopper, "gemm_wgmma", 256},  // a partial k-block
        Case{GemmShape{.dtype = DType::kBFloat16, .n = 256, .k = 36}, hopper, "gemm_simt", 0},      // rows of 72 bytes
        // K under one k-block (a top gate's experts): bound by memory, on the SIMT kernel's narrow tiles
        Case{GemmShape{.dtype = DType::kBFloat16, .n = 2048, .k = 8}, hopper, "gemm_simt", 0},
        Case{GemmShape{.dtype = DType::kBFloat16, .n = 2048, .k = 8, .trans_a = true}, hopper, "gemm_simt", 0},
        // under one TF32 k-block: mma.sync's TF32, which reads B [N, K] too
        Case{GemmShape{.dtype = DType::kFloat32, .n = 256, .k = 16, .trans_b = true, .allow_tf32 = true}, hopper,
             "gemm_tf32", 0},
        // mma.sync's weight gradient: K in whole 128-row tiles (float32 in TF32 too)
        Case{GemmShape{.dtype = DType::kFloat32, .n = 128, .k = 256, .allow_tf32 = true, .trans_a = true},
             Target::cuda(80), "gemm_tf32", 0},
        Case{GemmShape{.dtype = DType::kBFloat16, .n = 256, .k = 256, .trans_a = true, .grouped = true},
             Target::cuda(80), "gemm_mma", 0},
        Case{GemmShape{.dtype = DType::kBFloat16, .n = 256, .k = 192, .trans_a = true}, Target::cuda(80), "gemm_simt",
             0},
        // mma.sync reads B [N, K] (the data gradient's W^T) wherever wgmma does not run
        Case{GemmShape{.dtype = DType::kBFloat16, .n = 256, .k = 64, .trans_b = true}, Target::cuda(80), "gemm_mma", 0},
        Case{GemmShape{
                 .dtype = DType::kFloat16, .n = 256, .k = 64, .trans_b = true, .activation = kernels::kActGeluGrad},
             Target::cuda(89), "gemm_mma", 0},
        Case{GemmShape{.dtype = DType::kBFloat16, .n = 256, .k = 64, .aligned_16 = false}, hopper, "gemm_simt", 0},
        Case{GemmShape{.dtype = DType::kBFloat16, .n = 256, .k = 64, .trans_a = true}, hopper, "gemm_wgmma", 256},
        Case{GemmShape{.dtype = DType::kBFloat16, .n = 256, .k = 64, .trans_a = true, .grouped = true}, hopper,
             "gemm_wgmma", 256},
        Case{GemmShape{.dtype = DType::kFloat32, .n = 256, .k = 64, .allow_tf32 = true}, hopper, "gemm_tf32", 0},
        // TF32 on wgmma takes both operands K-major: B [N, K], k % 4 == 0
        Case{GemmShape{.dtype = DType::kFloat32, .n = 256, .k = 96, .trans_b = true, .allow_tf32 = true}, hopper,
             "gemm_wgmma", 256},
        Case{GemmShape{.dtype = DType::kFloat32, .n = 384, .k = 32, .trans_b = true, .allow_tf32 = true}, hopper,
             "gemm_wgmma", 128},
        Case{GemmShape{.dtype = DType::kFloat32, .n = 256, .k = 100, .trans_b = true, .allow_tf32 = true}, hopper,
             "gemm_wgmma", 256},
        Case{GemmShape{.dtype = DType::kFloat32, .n = 256, .k = 50, .trans_b = true, .allow_tf32 = true}, hopper,
             "gemm_simt", 0},
        Case{GemmShape{.dtype = DType::kFloat32, .n = 256, .k = 64, .trans_b = true}, hopper, "gemm_simt", 0},
        // the weight gradient in TF32: its operands transposed ahead; K (its output rows) of a k-block
        Case{GemmShape{.dtype = DType::kFloat32, .n = 256, .k = 64, .allow_tf32 = true, .trans_a = true}, hopper,
             "gemm_wgmma", 256},
        Case{GemmShape{
                 .dtype = DType::kFloat32, .n = 128, .k = 200, .allow_tf32 = true, .trans_a = true, .grouped = true},
             hopper, "gemm_wgmma", 128},
        Case{GemmShape{.dtype = DType::kFloat32, .n = 256, .k = 16, .allow_tf32 = true, .trans_a = true}, hopper,
             "gemm_simt", 0},
        Case{GemmShape{.dtype = DType::kFloat32, .n = 256, .k = 64, .trans_a = true}, hopper, "gemm_simt", 0},
        Case{GemmShape{.dtype = DType::kFloat32, .n = 256, .k = 64, .allow_tf32 = true, .trans_a = true},
             Target::cuda(80), "gemm_simt", 0},
        Case{GemmShape{.dtype = DType::kFloat32, .n = 256, .k = 64, .trans_b = true, .allow_tf32 = true},
             Target::cuda(90), "gemm_tf32", 0},
        Case{GemmShape{.dtype = DType::kBFloat16, .n = 192, .k = 64}, hopper, "gemm_simt", 0}}) {
    const KernelSpec spec = kernels::gemm_spec(c.shape, c.target);
    SCOPED_TRACE(spec.to_string());
    EXPECT_EQ(spec.family, c.family);
    EXPECT_NO_THROW(validate_spec(spec));
    if (c.tile_n != 0) {
      EXPECT_EQ(spec.int_param("tile_n"), c.tile_n);
    }
  }
}

// `spec` with parameter `name` set to `value`.
KernelSpec with_param(KernelSpec spec, const char* name, ParamValue value) {
  for (auto& [param, v] : spec.params)
    if (param == name) v = value;
  return spec;
}

// validate_spec refuses `spec` with a UserError whose message holds `needle`.
void expect_spec_refused(const KernelSpec& spec, const char* needle) {
  try {
    validate_spec(spec);
    ADD_FAILURE() << spec.to_string() << " was accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

// The mma.sync families' rule (before Hopper, and the fallback on it): whole 128-column tiles of
// N, K in whole k-steps (32 for 16-bit, 16 for TF32) and, for the weight gradient, whole 128-row
// tiles, which takes no epilogue; sm_80 or newer.
TEST(GemmSelect, MmaSyncSpecsOutsideTheirRuleAreRefused) {
  const KernelSpec mma = kernels::gemm_spec({.dtype = DType::kBFloat16, .n = 256, .k = 128}, Target::cuda(80));
  ASSERT_EQ(mma.family, "gemm_mma");
  EXPECT_NO_THROW(validate_spec(mma));
  expect_spec_refused(with_param(mma, "k", int64_t{48}), "k % 32 == 0");
  expect_spec_refused(with_param(mma, "n", int64_t{192}), "n % 128 == 0");
  KernelSpec older = mma;
  older.target = Target::cuda(75);
  expect_spec_refused(older, "sm_80");
  const KernelSpec weight_grad = with_param(mma, "trans_a", true);
  EXPECT_NO_THROW(validate_spec(weight_grad));
  expect_spec_refused(with_param(weight_grad, "k", int64_t{96}), "k % 128 == 0");
  expect_spec_refused(with_param(weight_grad, "bias", true), "trans_a");
  const KernelSpec tf32 =
      kernels::gemm_spec({.dtype = DType::kFloat32, .n = 128, .k = 48, .allow_tf32 = true}, Target::cuda(80));
  ASSERT_EQ(tf32.family, "gemm_tf32");
  EXPECT_NO_THROW(validate_spec(tf32));
  expect_spec_refused(with_param(tf32, "k", int64_t{40}), "k % 16 == 0");
  expect_spec_refused(with_param(with_param(tf32, "trans_a", true), "k", int64_t{48}), "k % 128 == 0");
}

// A float32 wgmma spec is TF32 and exists only in its K-major form: one that reads B N-major, or
// A transposed, or whose rows of K are not whole 16 bytes, names what is wrong.
TEST(GemmSelect, Tf32WgmmaSpecsOutsideItsFormAreRefused) {
  const KernelSpec good = kernels::gemm_spec(
      {.dtype = DType::kFloat32, .n = 256, .k = 96, .trans_b = true, .allow_tf32 = true}, Target::cuda(90, true));
  ASSERT_EQ(good.family, "gemm_wgmma");
  EXPECT_NO_THROW(validate_spec(good));
  expect_spec_refused(with_param(good, "trans_b", false), "K-major");
  expect_spec_refused(with_param(good, "trans_a", true), "trans_a");
  expect_spec_refused(with_param(good, "k", int64_t{82}), "k % 4 == 0");
  // The weight gradient (trans_a without trans_b) reads its operands transposed ahead: the one
  // float32 wgmma form that does, and it needs the element-wise transpose planned beside it.
  const KernelSpec weight_grad = with_param(with_param(good, "trans_b", false), "trans_a", true);
  EXPECT_NO_THROW(validate_spec(weight_grad));
  EXPECT_TRUE(kernels::gemm_reads_transposed_operands(weight_grad));
  EXPECT_FALSE(kernels::gemm_reads_transposed_operands(good));
  const KernelSpec transpose = kernels::gemm_operand_transpose_spec(weight_grad);
  EXPECT_EQ(transpose, kernels::elementwise_spec(DType::kFloat32, kernels::kEwTranspose, kernels::kActNone,
                                                 Target::cuda(90, true)));
  EXPECT_NO_THROW(validate_spec(transpose));
  const KernelSpec bf16_weight_grad =
      kernels::gemm_spec({.dtype = DType::kBFloat16, .n = 256, .k = 64, .trans_a = true}, Target::cuda(90, true));
  ASSERT_EQ(bf16_weight_grad.family, "gemm_wgmma");
  EXPECT_FALSE(kernels::gemm_reads_transposed_operands(bf16_weight_grad)) << "16-bit operands are read as stored";
  EXPECT_THROW(kernels::gemm_operand_transpose_spec(good), Error);
}

// The persistent Hopper grid: one block per multiprocessor at most, never more blocks than
// work items, 384 threads, the ring's shared memory.
TEST(GemmLaunch, HopperGridIsPersistent) {
  const KernelSpec spec = kernels::gemm_spec({.dtype = DType::kBFloat16, .n = 4096, .k = 1024}, Target::cuda(90, true));
  ASSERT_EQ(spec.family, "gemm_wgmma");
  const kernels::GemmProblem big{.batch = 8, .rows = 1024, .max_rows = 1024, .k = 1024, .n = 4096, .parallelism = 132};
  LaunchConfig config = kernels::gemm_launch_config(spec, big);
  EXPECT_EQ(config.grid, 132u);
  EXPECT_EQ(config.block, static_cast<unsigned>(kernels::kWgmmaThreads));
  EXPECT_EQ(config.shared_bytes, static_cast<unsigned>(kernels::wgmma_shared_bytes(256)));
  EXPECT_LE(config.shared_bytes, 227u * 1024) << "over the H100/H200 per-block limit";
  kernels::GemmProblem small = big;
  small.batch = 2;
  small.rows = 100;
  config = kernels::gemm_launch_config(spec, small);
  EXPECT_EQ(config.grid, 2u * 1 * (4096 / 256));
}

// Every family's launch covers its work: each token (or element) gets a CUDA thread, warp or
// block share; CPU launches stay within a few blocks per thread.
TEST(LaunchRules, EveryFamilyCoversItsWork) {
  const Target gpu = Target::cuda(90, true), cpu = Target::cpu(64);
  for (int64_t tokens : {1, 127, 4097}) {
    SCOPED_TRACE(tokens);
    for (bool encode : {true, false}) {
      const KernelSpec spec = kernels::dispatch_spec(encode, DType::kBFloat16, 4096, 2, false, gpu);
      const LaunchConfig c = kernels::dispatch_launch_config(spec, tokens, 132);
      const int per_block = kernels::dispatch_tokens_per_block(4096, static_cast<int>(spec.int_param("vec")));
      EXPECT_GE(int64_t{c.grid} * per_block, tokens);
      EXPECT_LT((int64_t{c.grid} - 1) * per_block, tokens) << "a block with no token";
      EXPECT_EQ(c.block, static_cast<unsigned>(kernels::kDispatchThreadsPerBlock));
      EXPECT_EQ(
          kernels::dispatch_launch_config(kernels::dispatch_spec(encode, DType::kFloat32, 64, 2, false, cpu), tokens, 2)
              .grid,
          8u);
    }
    const LaunchConfig grad =
        kernels::gate_grad_launch_config(kernels::gate_grad_spec(DType::kFloat16, 4096, 2, gpu), tokens, 132);
    EXPECT_GE(int64_t{grad.grid} * (grad.block / 32), tokens) << "a warp per token";
    const LaunchConfig topk =
        kernels::gating_launch_config(kernels::gate_topk_spec(DType::kFloat32, 8, 2, true, gpu), tokens, 132);
    EXPECT_GE(int64_t{topk.grid} * topk.block, tokens);
    const LaunchConfig cast =
        kernels::cast_launch_config(kernels::cast_spec(DType::kBFloat16, DType::kFloat32, gpu), tokens, 132);
    EXPECT_GE(int64_t{cast.grid} * cast.block, tokens);
    const KernelSpec ew = kernels::elementwise_spec(DType::kFloat32, kernels::kEwAdd, kernels::kActNone, gpu);
    const LaunchConfig add = kernels::elementwise_launch_config(ew, tokens, -1, 132);
    EXPECT_GE(int64_t{add.grid} * add.block, tokens);
    const KernelSpec ew_cpu = kernels::elementwise_spec(DType::kFloat32, kernels::kEwAdd, kernels::kActNone, cpu);
    const unsigned cpu_grid = kernels::elementwise_launch_config(ew_cpu, tokens, -1, 2).grid;
    EXPECT_GE(cpu_grid, 1u);
    EXPECT_LE(cpu_grid, 2u);
  }
  const LaunchConfig locations =
      kernels::route_locations_launch_config(kernels::route_locations_spec(DType::kFloat32, 8, 2, gpu), 8);
  EXPECT_EQ(locations.grid, 8u) << "a block per expert";
  EXPECT_EQ(kernels::route_locations_launch_config(kernels::route_locations_spec(DType::kFloat32, 8, 2, cpu), 8).grid,
            1u)
      << "one sequential scan on the CPU";
}

TEST(KernelSpec, VectorWidthRule) {
  EXPECT_EQ(kernels::dispatch_vec_width(DType::kFloat16, 4096, Target::cuda(90)), 8);
  EXPECT_EQ(kernels::dispatch_vec_width(DType::kFloat32, 4096, Target::cuda(90)), 4);
  EXPECT_EQ(kernels::dispatch_vec_width(DType::kFloat32, 6, Target::cuda(90)), 2);
  EXPECT_EQ(kernels::dispatch_vec_width(DType::kBFloat16, 7, Target::cuda(90)), 1);
  EXPECT_EQ(kernels::dispatch_vec_width(DType::kFloat32, 4096, Target::cpu()), 1);
}

TEST(KernelSpec, BadSpecsAreUserErrors) {
  EXPECT_THROW(KernelSpec::parse("dispatch_encode<dtype=float32>@cpu"), UserError);
  EXPECT_THROW(KernelSpec::parse("nope<dtype=float32>@cpu"), UserError);
  EXPECT_THROW(KernelSpec::parse("dispatch_encode<dtype=float32,model_dim=64,top_k=1,apply_gate=true,vec=1>@tpu"),
               UserError);
  EXPECT_THROW(KernelSpec::parse("dispatch_encode<dtype=float8,model_dim=64,top_k=1,apply_gate=true,vec=1>@cpu"),
               UserError);
  // model_dim not a multiple of vec; top_k out of range; a pack wider than 16 bytes.
  for (const char* text : {"dispatch_encode<dtype=float32,model_dim=6,top_k=1,apply_gate=true,vec=4>@sm_90",
                           "dispatch_encode<dtype=float32,model_dim=64,top_k=4097,apply_gate=true,vec=1>@cpu",
                           "dispatch_encode<dtype=float32,model_dim=64,top_k=1,apply_gate=true,vec=8>@sm_90",
                           "route_locations<dtype=bfloat16,experts=4,top_k=1>@cpu",
                           // the SIMT GEMM's tiles are 64 or 128
                           "gemm_simt<dtype=float32,n=256,k=64,trans_a=false,trans_b=false,bias=false,activation=0,"
                           "tile=96>@sm_90"}) {
    EXPECT_THROW(generate_source(KernelSpec::parse(text)), UserError) << text;
  }
  EXPECT_THROW(Target::parse("sm_"), UserError);
  EXPECT_THROW(Target::parse("sm_90b"), UserError);
  EXPECT_THROW(parse_dtype("int8"), UserError);
}

TEST(Source, GeneratedUnitIsTinyAndListsItsHeaders) {
  Source cpu = generate_source(kernels::dispatch_spec(true, DType::kFloat32, 64, 2, true, Target::cpu()));
  EXPECT_NE(cpu.text.find("extern \"C\" void sy_entry"), std::string::npos);
  EXPECT_EQ(cpu.headers, (std::vector<std::string>{"switchyard/common/dispatch_args.h", "switchyard/common/macros.h",
                                                   "switchyard/cpu/dispatch_encode.hpp", "switchyard/cpu/types.hpp"}));
  Source cuda = generate_source(kernels::dispatch_spec(true, DType::kFloat16, 64, 2, true, Target::cuda(80)));
  EXPECT_EQ(cuda.entry, "&switchyard::cuda::dispatch_encode<switchyard::cuda::half_t, 64, 2, false, 8>");
  EXPECT_EQ(cuda.headers.size(), 5u);  // + launch_rules.h and cuda/types.cuh
}

TEST(ModelConfig, SampleConfigsExpandToTheirKernelSets) {
  ModelConfig tiny = ModelConfig::load(testing::source_dir() + "/examples/models/tiny.json");
  KernelSet cpu = kernel_set(tiny, Target::cpu());
  // Dispatch: {f32, f64, f16, bf16} x top_k {1, 2} x postscore {T, F} x {encode, decode} = 32;
  // per dtype, 3 GEMMs (gate and fc1 read nn.Linear weights transposed, fc2) and a gate_topk per
  // top_k = 5, the element-wise sum_rows and scale (experts shared by ranks) = 2, helloworld's
  // example loss (logits, softmax) = 2 and the weights' initialization = 1; per score dtype (f32
  // serves f16 and bf16 too, f64) a route_locations per top_k and the batch-prioritized order
  // (route_priority) = 3.
  EXPECT_EQ(cpu.specs.size(), 32u + 4 * (5u + 2u + 2u + 1u) + 2 * 3u);
  auto read_transposed = [](const KernelSet& set) {
    int count = 0;
    for (const auto& spec : set.specs) count += spec.to_string().find("trans_b=true") != std::string::npos;
    return count;
  };
  EXPECT_EQ(read_transposed(cpu), 4 * 2) << "each dtype's gate and fc1 GEMMs read the [out, in] weights transposed";
  EXPECT_EQ(read_transposed(kernel_set(tiny, Target::cuda(90))), 3 * 2)
      << "CUDA reads each dtype's gate and fc1 weights as stored too (B [N, K]), with no transposed copy";
  EXPECT_TRUE(cpu.skipped.empty()) << "the CPU templates take every float dtype";
  // CUDA: dispatch 24; per dtype (f32, f16, bf16) 3 GEMMs + a gate_topk per top_k = 5 and
  // sum_rows, scale = 2 (no transpose: no weight copies outside TF32 on Hopper); and route_locations
  // (fp32 scores for every dtype) per top_k = 2 and route_priority once; and the example loss
  // (logits, softmax) and initialization per dtype.
  EXPECT_EQ(kernel_set(tiny, Target::cuda(90)).specs.size(), 24u + 3 * (5u + 2u + 2u + 1u) + 2u + 1u);
  ModelConfig mixtral = ModelConfig::load(testing::source_dir() + "/examples/models/mixtral-8x7b.json");
  EXPECT_EQ(mixtral.model_dim, 4096);
  EXPECT_EQ(mixtral.hidden_size, 14336);
  KernelSet mixtral_cuda = kernel_set(mixtral, Target::cuda(80));
  // fp32_gate: one float32 gate GEMM, gate_topk, route_locations and route_priority shared by the three dtypes,
  // a cast to float32 for float16 and bfloat16, and fc1/fc2 per dtype; sum_rows and scale per
  // dtype; the example loss (2) and the initialization (the float32 gate's is float32's) per dtype.
  EXPECT_EQ(mixtral_cuda.specs.size(), 6u + 1u + 1u + 1u + 1u + 2u + 3 * 2u + 3 * 2u + 3 * 2u + 3u);
  int tensor_core = 0;
  for (const auto& spec : mixtral_cuda.specs) tensor_core += spec.family == "gemm_mma";
  EXPECT_EQ(tensor_core, 4) << "fc1 and fc2 of float16 and bfloat16 run on tensor cores";
}

TEST(ModelConfig, TrainingAddsTheBackwardKernels) {
  ModelConfig tiny = ModelConfig::load(testing::source_dir() + "/examples/models/tiny.json");
  tiny.training = true;
  KernelSet cpu = kernel_set(tiny, Target::cpu());
  // Per CPU dtype: 6 GEMMs (gate input and weight gradients, fc1 without its fused relu, fc2's
  // data gradient with relu' fused, fc1's data gradient, the expert weight gradient: fc1 and fc2
  // share N = M, K = H), per top_k a gate_backward and a gate_grad (4), and activate, add, sgd
  // (3; sum_rows is a forward kernel), and the example loss's gradient fill (1); the flipped
  // encode/decode are already there (both is_postscore values).
  EXPECT_EQ(cpu.specs.size(), 78u + 4 * (6u + 4u + 3u + 1u));
  std::vector<std::string> texts;
  for (const auto& spec : cpu.specs) texts.push_back(spec.to_string());
  for (const char* needle :
       {"gemm<dtype=float32,n=64,k=128,trans_a=true,", "gemm<dtype=float64,n=64,k=4,trans_a=true,",
        "gemm<dtype=float32,n=128,k=64,trans_a=false,trans_b=true,bias=false,activation=5,",
        "gate_backward<dtype=float32,experts=4,top_k=2,normalize=true>",
        "gate_grad<dtype=float64,model_dim=64,top_k=1,vec=1>", "elementwise<dtype=float32,op=4,activation=0>"}) {
    EXPECT_TRUE(std::any_of(texts.begin(), texts.end(), [&](const std::string& t) {
      return t.find(needle) != std::string::npos;
    })) << needle;
  }
  EXPECT_THROW(
      ModelConfig::from_json_text(R"({"model_dim": 8, "hidden_size": 8, "num_experts": 2, "training": 1})", "inline"),
      UserError);
}

TEST(ModelConfig, ExpertFieldsSelectTheExpertKernels) {
  ModelConfig swiglu = ModelConfig::from_json_text(
      R"({"model_dim": 32, "hidden_size": 64, "num_experts": 4, "expert_type": "swiglu", "dtype": "float64",
          "fp32_gate": true, "normalize_gate": [true, false]})",
      "inline");
  std::vector<std::string> texts;
  for (const auto& spec : kernel_set(swiglu, Target::cpu()).specs) texts.push_back(spec.to_string());
  auto has = [&](const std::string& needle) {
    return std::any_of(texts.begin(), texts.end(),
                       [&](const std::string& t) { return t.find(needle) != std::string::npos; });
  };
  EXPECT_TRUE(has("gemm<dtype=float32,n=4,k=32,"));  // the fp32 gate
  EXPECT_TRUE(
      has("gemm<dtype=float64,n=64,k=32,trans_a=false,trans_b=false,bias=false,activation=4"));  // SwiGLU product
  EXPECT_TRUE(has("cast<dtype=float64,to=float32>"));
  EXPECT_TRUE(has("cast<dtype=float32,to=float64>"));
  EXPECT_TRUE(has("gate_topk<dtype=float32,experts=4,top_k=1,normalize=false>"));
  ModelConfig tf32 = ModelConfig::from_json_text(
      R"({"model_dim": 256, "hidden_size": 512, "num_experts": 4, "allow_tf32": true})", "inline");
  int tensor_core = 0;
  for (const auto& spec : kernel_set(tf32, Target::cuda(90)).specs) tensor_core += spec.family == "gemm_tf32";
  EXPECT_EQ(tensor_core, 2) << "fc1 and fc2 in TF32; the gate (n = 4) stays on CUDA cores";
  for (const char* bad : {R"({"model_dim": 8, "hidden_size": 8, "num_experts": 2, "expert_type": "moe"})",
                          R"({"model_dim": 8, "hidden_size": 8, "num_experts": 2, "activation": "tanh"})",
                          R"({"model_dim": 8, "hidden_size": 8, "num_experts": 2, "fp32_gate": "yes"})"}) {
    EXPECT_THROW(ModelConfig::from_json_text(bad, "inline"), UserError) << bad;
  }
}

}  // namespace
}  // namespace switchyard
