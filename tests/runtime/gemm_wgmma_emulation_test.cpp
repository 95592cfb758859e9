// The Hopper GEMM template (templates/switchyard/cuda/gemm_wgmma.cuh) run on the host through
// tests/support/hopper_emulation.h, against the double reference: the producer's TMA loads into
// the ring of stages, the mbarrier phases, the consumers' wgmma through the same shared-memory
// descriptors, the persistent walk over tiles and the epilogues. The arguments (TMA boxes, work
// items) come from the family's gemm_wgmma_args and the grid from its launch config, as on a GPU,
// with few multiprocessors so that every block walks several tiles and the ring wraps. What this
// cannot check (the speed, the proxies' memory ordering, the swizzle as the hardware really lays
// it out) is scripts/device-check's, on an H200.
#include "tests/support/hopper_emulation.h"  // before the templates

#include <gtest/gtest.h>

#include <switchyard/cuda/gemm_wgmma.cuh>

#include "core/error.h"
#include "jit/kernels/gemm.h"
#include "tests/support/emulated_transpose.h"
#include "tests/support/gemm_cases.h"

namespace switchyard {
namespace {

// Few multiprocessors: each block takes several tiles, so the ring's stages and phases wrap.
constexpr unsigned kMultiprocessors = 3;

kernels::TmaDescriptor emulated_tma(const void* base, const kernels::TmaOperand& operand) {
  return emulation::tma_descriptor(base, operand.dims, operand.strides, operand.box, operand.element_bytes);
}

// Operands transposed ahead, as batched_gemm gives them to a GEMM that reads them so (the TF32
// weight gradient): A [B, R, K] and B [B, R, N] as [B, K, P] and [B, N, P], P the rows in whole
// 16-byte rows, through the element-wise family's transpose (emulated too), zero past the counts.
struct TransposedOperands {
  std::vector<float> a, b;
  int padded_rows = 0;
};

TransposedOperands transpose_operands(const testing::GemmCase& g, const testing::GemmBuffers& buffers,
                                      kernels::GemmArgs& gemm) {
  TransposedOperands t;
  t.padded_rows = static_cast<int>(kernels::wgmma_transposed_rows(g.rows, sizeof(float)));
  t.a = testing::emulated_transpose(buffers.a.data(), gemm.row_counts, gemm.batch, gemm.rows, static_cast<int>(g.k),
                                    t.padded_rows);
  t.b = testing::emulated_transpose(buffers.b.data(), gemm.row_counts, gemm.batch, gemm.rows, static_cast<int>(g.n),
                                    t.padded_rows);
  gemm.a = t.a.data();
  gemm.b = t.b.data();
  gemm.rows = t.padded_rows;
  gemm.a_batch_stride = g.k * t.padded_rows;
  gemm.b_batch_stride = g.n * t.padded_rows;
  return t;
}

template <typename T, int kN, int kK, bool kTransA, bool kTransB, bool kBias, int kAct, int kTileN>
void expect_wgmma_matches(const testing::GemmCase& gemm) {
  SCOPED_TRACE(testing::describe(gemm));
  ASSERT_EQ(gemm.n, kN);
  ASSERT_EQ(gemm.k, kK);
  const KernelSpec spec = kernels::gemm_spec(testing::gemm_shape(gemm, true), Target::cuda(90, true));
  ASSERT_EQ(spec.family, "gemm_wgmma");
  ASSERT_EQ(spec.int_param("tile_n"), kTileN) << "the family's tile rule and the test's instantiation disagree";
  testing::GemmBuffers buffers = testing::gemm_buffers(gemm, 47);
  kernels::GemmArgs gemm_args = testing::gemm_args(gemm, buffers);
  TransposedOperands operands;
  if (kernels::gemm_reads_transposed_operands(spec)) operands = transpose_operands(gemm, buffers, gemm_args);
  const kernels::GemmWgmmaArgs args = kernels::gemm_wgmma_args(spec, gemm_args, emulated_tma);
  const LaunchConfig launch =
      kernels::gemm_launch_config(spec, {gemm.batch, gemm.rows, gemm.rows, kK, kN, kMultiprocessors});
  ASSERT_EQ(launch.grid, std::min<unsigned>(kMultiprocessors, static_cast<unsigned>(args.tiles)));
  ASSERT_GT(args.tiles, static_cast<int>(launch.grid)) << "a case where no block walks a second tile checks less";
  emulation::launch(launch, [&] { cuda::gemm_wgmma<T, kN, kK, kBias, kAct, kTransB, kTileN, kTransA>(args); });
  testing::expect_gemm_output(gemm, buffers);
}

TEST(GemmWgmmaEmulation, ForwardFormsMatchTheReference) {
  // B [K, N] read N-major, 256-column tiles, rows not a multiple of the 128-row tile.
  expect_wgmma_matches<cuda::bf16_t, 256, 128, false, false, true, kernels::kActGelu, 256>(
      {.dtype = DType::kBFloat16,
       .batch = 2,
       .rows = 200,
       .k = 128,
       .n = 256,
       .bias = true,
       .activation = kernels::kActGelu});
  // B [N, K] (the data gradient's form) K-major, 128-column tiles, a derivative epilogue, grouped
  // rows (one batch empty, one cut inside a tile), K past the ring's six stages.
  expect_wgmma_matches<cuda::half_t, 128, 448, false, true, false, kernels::kActReluGrad, 128>(
      {.dtype = DType::kFloat16,
       .batch = 3,
       .rows = 300,
       .k = 448,
       .n = 128,
       .trans_b = true,
       .activation = kernels::kActReluGrad,
       .grouped = true});
  // SwiGLU's gated product, one reduction step per tile.
  expect_wgmma_matches<cuda::bf16_t, 384, 64, false, false, false, kernels::kActSwiglu, 128>(
      {.dtype = DType::kBFloat16,
       .batch = 2,
       .rows = 130,
       .k = 64,
       .n = 384,
       .activation = kernels::kActSwiglu,
       .grouped = true});
}

// float32 layers that allow TF32: A [rows, K] with B [N, K] (fc1 as stored, the data gradient's
// W^T), both K-major, 32 values of K a stage, C stored through 32-column boxes.
TEST(GemmWgmmaEmulation, Tf32FormsMatchTheReference) {
  // 256-column tiles, bias with GELU, K of three 32-deep k-blocks (not a multiple of 64), rows not
  // a multiple of the tile.
  expect_wgmma_matches<float, 256, 96, false, true, true, kernels::kActGelu, 256>({.dtype = DType::kFloat32,
                                                                                   .batch = 2,
                                                                                   .rows = 200,
                                                                                   .k = 96,
                                                                                   .n = 256,
                                                                                   .trans_b = true,
                                                                                   .bias = true,
                                                                                   .activation = kernels::kActGelu,
                                                                                   .tf32 = true});
  // 128-column tiles, SwiGLU's gated product, grouped rows (one batch empty, one cut inside a
  // tile, stored row by row), K past the ring's six stages of 32.
  expect_wgmma_matches<float, 384, 256, false, true, false, kernels::kActSwiglu, 128>(
      {.dtype = DType::kFloat32,
       .batch = 3,
       .rows = 300,
       .k = 256,
       .n = 384,
       .trans_b = true,
       .activation = kernels::kActSwiglu,
       .grouped = true,
       .tf32 = true});
}

// The emulated tensor cores read float32 as TF32, the low 13 bits of the mantissa ignored, as
// the GPU does with float32 in shared memory.
TEST(GemmWgmmaEmulation, Tf32IgnoresTheLowMantissaBits) {
  const float below_tf32 = 1.0f + 0x1p-15f;  // 1 plus a bit past TF32's 10 mantissa bits
  EXPECT_EQ(emulation::tf32_value(below_tf32), 1.0f);
  EXPECT_EQ(emulation::tf32_value(-below_tf32), -1.0f);
  EXPECT_EQ(emulation::tf32_value(1.5f), 1.5f);
}

// K not a multiple of the k-block (rows of K only in whole 16 bytes): the last k-block's columns
// past K are TMA's zeros in both operands, in every form.
TEST(GemmWgmmaEmulation, PartialKBlocksMatchTheReference) {
  // 200 = 3 x 64 + 8, B N-major: its last box holds 8 rows of K
  expect_wgmma_matches<cuda::bf16_t, 256, 200, false, false, false, kernels::kActNone, 256>(
      {.dtype = DType::kBFloat16, .batch = 2, .rows = 150, .k = 200, .n = 256});
  // 72 = 64 + 8, B K-major
  expect_wgmma_matches<cuda::half_t, 128, 72, false, true, true, kernels::kActNone, 128>(
      {.dtype = DType::kFloat16, .batch = 2, .rows = 130, .k = 72, .n = 128, .trans_b = true, .bias = true});
  // TF32: 100 = 3 x 32 + 4
  expect_wgmma_matches<float, 128, 100, false, true, false, kernels::kActNone, 128>(
      {.dtype = DType::kFloat32, .batch = 2, .rows = 140, .k = 100, .n = 128, .trans_b = true, .tf32 = true});
  // The weight gradient's output rows (K = 200): its last 64-row box of A^T is 8 rows
  expect_wgmma_matches<cuda::bf16_t, 128, 200, true, false, false, kernels::kActNone, 128>(
      {.dtype = DType::kBFloat16, .batch = 2, .rows = 100, .k = 200, .n = 128, .trans_a = true});
  // The weight gradient with output rows of one 64-row box and a part (K = 72)
  expect_wgmma_matches<cuda::bf16_t, 512, 72, true, false, false, kernels::kActNone, 256>(
      {.dtype = DType::kBFloat16, .batch = 2, .rows = 300, .k = 72, .n = 512, .trans_a = true});
}

TEST(GemmWgmmaEmulation, WeightGradientsMatchTheReference) {
  // C [K, N] = A^T B: both operands read M/N-major, the rows (the reduction) not a multiple of
  // 64, so the last stage's rows past the end are TMA's zeros; K not a multiple of the row tile.
  expect_wgmma_matches<cuda::bf16_t, 256, 192, true, false, false, kernels::kActNone, 256>(
      {.dtype = DType::kBFloat16, .batch = 2, .rows = 100, .k = 192, .n = 256, .trans_a = true});
  // Grouped (dropless): each batch sums its count's rows (one none: zeros), NaN past the counts,
  // which load with the rest and are cleared; counts whose last 64 rows hold 13, 63 (one short of
  // whole), 64 and 58.
  expect_wgmma_matches<cuda::bf16_t, 256, 256, true, false, false, kernels::kActNone, 256>(
      {.dtype = DType::kBFloat16,
       .batch = 5,
       .rows = 250,
       .k = 256,
       .n = 256,
       .grouped = true,
       .trans_a = true,
       .counts = {13, 0, 191, 128, 250}});
  expect_wgmma_matches<cuda::half_t, 128, 64, true, false, false, kernels::kActNone, 128>(
      {.dtype = DType::kFloat16, .batch = 4, .rows = 301, .k = 64, .n = 128, .trans_a = true});
}

// float32 weight gradients in TF32 (a layer that allows it): A^T and B^T transposed ahead, both
// K-major with the rows as K, the rows' tail past the counts zeros from the transpose.
TEST(GemmWgmmaEmulation, Tf32WeightGradientsMatchTheReference) {
  // Rows padded to whole 16 bytes (102 to 104) and not a multiple of the 32-deep k-block; K (the
  // output rows) not a multiple of the row tile; 256-column tiles.
  expect_wgmma_matches<float, 256, 192, true, false, false, kernels::kActNone, 256>(
      {.dtype = DType::kFloat32, .batch = 2, .rows = 102, .k = 192, .n = 256, .trans_a = true, .tf32 = true});
  // Grouped (dropless): NaN past the counts, which the transpose leaves out; one batch sums no rows.
  expect_wgmma_matches<float, 128, 128, true, false, false, kernels::kActNone, 128>({.dtype = DType::kFloat32,
                                                                                     .batch = 5,
                                                                                     .rows = 250,
                                                                                     .k = 128,
                                                                                     .n = 128,
                                                                                     .grouped = true,
                                                                                     .trans_a = true,
                                                                                     .counts = {13, 0, 191, 128, 250},
                                                                                     .tf32 = true});
}

// The block's dynamic shared memory from its first 1024-byte boundary (what the swizzle needs).
unsigned char* swizzle_aligned_shared_memory() {
  return reinterpret_cast<unsigned char*>((reinterpret_cast<uintptr_t>(cuda::dynamic_shared_memory()) + 1023) &
                                          ~uintptr_t{1023});
}

// The emulator's own checks, so that a pass above means something.
TEST(GemmWgmmaEmulation, MisusedBarriersAndLoadsAreErrors) {
  const LaunchConfig config{1, 128, 4096};
  // A wait no arrival will complete.
  EXPECT_THROW(emulation::launch(config,
                                 [] {
                                   auto* barrier = reinterpret_cast<unsigned long long*>(cuda::dynamic_shared_memory());
                                   if (threadIdx.x == 0) cuda::mbarrier_init(barrier, 1);
                                   __syncthreads();
                                   cuda::mbarrier_wait(barrier, 0);
                                 }),
               Error);
  // A barrier used before mbarrier.init (shared memory starts as garbage).
  EXPECT_THROW(
      emulation::launch(
          config, [] { cuda::mbarrier_arrive(reinterpret_cast<unsigned long long*>(cuda::dynamic_shared_memory())); }),
      Error);
  std::vector<cuda::bf16_t> tensor(64 * 64);
  const kernels::TmaDescriptor map =
      emulation::tma_descriptor(tensor.data(), {64, 64, 1}, {128, 8192}, {64, 8, 1}, sizeof(cuda::bf16_t));
  auto load = [&](int offset, bool expect) {
    return [&, offset, expect] {
      unsigned char* shared = swizzle_aligned_shared_memory();
      auto* barrier = reinterpret_cast<unsigned long long*>(shared + 2048);
      if (threadIdx.x != 0) return;
      cuda::mbarrier_init(barrier, 1);
      if (expect)
        cuda::mbarrier_arrive_expect_tx(barrier, 64 * 8 * 2);
      else
        cuda::mbarrier_arrive(barrier);
      cuda::tma_load_3d(shared + offset, &map, barrier, 0, 0, 0);
      cuda::mbarrier_wait(barrier, 0);
    };
  };
  emulation::launch(config, load(0, true));
  // A TMA store must be waited for before its block ends (it reads the block's shared memory).
  auto store = [&](bool wait) {
    return [&, wait] {
      unsigned char* shared = swizzle_aligned_shared_memory();
      if (threadIdx.x != 0) return;
      cuda::tma_store_3d(&map, shared, 0, 0, 0);
      cuda::bulk_commit_group();
      if (wait) cuda::bulk_wait_group<0>();
    };
  };
  emulation::launch(config, store(true));
  EXPECT_THROW(emulation::launch(config, store(false)), Error);
  EXPECT_THROW(emulation::launch(config, load(0, false)), Error);   // bytes nobody announced
  EXPECT_THROW(emulation::launch(config, load(512, true)), Error);  // the swizzle needs 1024-byte alignment
  // The driver's limits: an inner box past the 128-byte swizzle (64 float32 values are 256 bytes),
  // strides not multiples of 16.
  EXPECT_THROW(emulation::tma_descriptor(tensor.data(), {64, 64, 1}, {128, 8192}, {128, 8, 1}, 2), Error);
  EXPECT_THROW(emulation::tma_descriptor(tensor.data(), {32, 64, 1}, {128, 8192}, {64, 8, 1}, 4), Error);
  EXPECT_THROW(emulation::tma_descriptor(tensor.data(), {64, 64, 1}, {100, 8192}, {64, 8, 1}, 2), Error);
}

}  // namespace
}  // namespace switchyard
