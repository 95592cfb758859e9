// The mma.sync tensor-core GEMMs (templates/switchyard/cuda/gemm_mma.cuh for float16/bfloat16,
// gemm_tf32.cuh for float32 as TF32: every GPU's tensor-core kernels before Hopper, and the
// fallback on Hopper) run on the host through tests/support/mma_emulation.h, against the double
// reference: cp.async's two-stage pipeline (copies land only at their wait), ldmatrix's fragments,
// mma.sync's fragment layouts, B as [K, N] or [N, K] (the data gradient), the weight gradient
// over run-time and grouped rows, rows that are not a multiple of the tile, and the epilogues; the grid is the family's
// own launch config. The emulator's own checks (a copy never waited for, a misaligned ldmatrix row) are tested too, so
// that a pass means something.
#include "tests/support/mma_emulation.h"  // before the templates

#include <gtest/gtest.h>

#include <switchyard/cuda/gemm_mma.cuh>
#include <switchyard/cuda/gemm_tf32.cuh>

#include "core/error.h"
#include "jit/kernels/gemm.h"
#include "tests/support/gemm_cases.h"

namespace switchyard {
namespace {

// Runs the kernel the family's rule picks on sm_80 for `gemm` with the family's launch, and checks
// C (rows past a grouped count keep their poison).
template <typename Kernel>
void expect_mma_matches(const testing::GemmCase& gemm, const char* family, Kernel kernel) {
  SCOPED_TRACE(testing::describe(gemm));
  const KernelSpec spec = kernels::gemm_spec(testing::gemm_shape(gemm, true), Target::cuda(80));
  ASSERT_EQ(spec.family, family);
  testing::GemmBuffers buffers = testing::gemm_buffers(gemm, 53);
  const kernels::GemmArgs args = testing::gemm_args(gemm, buffers);
  const LaunchConfig launch =
      kernels::gemm_launch_config(spec, {gemm.batch, gemm.rows, gemm.rows, gemm.k, gemm.n, 108});
  ASSERT_EQ(launch.block, static_cast<unsigned>(kernels::kGemmThreads));
  emulation::launch(launch, [&] { kernel(args); });
  testing::expect_gemm_output(gemm, buffers);
}

TEST(GemmMmaEmulation, HalfAndBfloat16FormsMatchTheReference) {
  // Bias with GELU, rows not a multiple of the 128-row tile, two 128-column tiles, two K steps.
  expect_mma_matches({.dtype = DType::kBFloat16,
                      .batch = 2,
                      .rows = 200,
                      .k = 64,
                      .n = 256,
                      .bias = true,
                      .activation = kernels::kActGelu},
                     "gemm_mma", [](const kernels::GemmArgs& args) {
                       cuda::gemm_mma<cuda::bf16_t, 256, 64, true, kernels::kActGelu, false, false>(args);
                     });
  // SwiGLU's gated product over grouped rows (one batch empty, one cut inside a tile), three K steps.
  expect_mma_matches({.dtype = DType::kFloat16,
                      .batch = 3,
                      .rows = 150,
                      .k = 96,
                      .n = 128,
                      .activation = kernels::kActSwiglu,
                      .grouped = true},
                     "gemm_mma", [](const kernels::GemmArgs& args) {
                       cuda::gemm_mma<cuda::half_t, 128, 96, false, kernels::kActSwiglu, false, false>(args);
                     });
  // A derivative epilogue, one K step.
  expect_mma_matches(
      {.dtype = DType::kBFloat16, .batch = 1, .rows = 130, .k = 32, .n = 128, .activation = kernels::kActReluGrad},
      "gemm_mma", [](const kernels::GemmArgs& args) {
        cuda::gemm_mma<cuda::bf16_t, 128, 32, false, kernels::kActReluGrad, false, false>(args);
      });
}

TEST(GemmMmaEmulation, Tf32FormsMatchTheReference) {
  // float32 with allow_tf32 and B [K, N]: bias with GELU over three 16-deep K steps.
  expect_mma_matches({.dtype = DType::kFloat32,
                      .batch = 2,
                      .rows = 140,
                      .k = 48,
                      .n = 128,
                      .bias = true,
                      .activation = kernels::kActGelu,
                      .tf32 = true},
                     "gemm_tf32", [](const kernels::GemmArgs& args) {
                       cuda::gemm_tf32<float, 128, 48, true, kernels::kActGelu, false, false>(args);
                     });
  // Grouped rows, two column tiles, one K step.
  expect_mma_matches(
      {.dtype = DType::kFloat32, .batch = 3, .rows = 100, .k = 16, .n = 256, .grouped = true, .tf32 = true},
      "gemm_tf32", [](const kernels::GemmArgs& args) {
        cuda::gemm_tf32<float, 256, 16, false, kernels::kActNone, false, false>(args);
      });
}

// B as [N, K] (trans_b: the data gradient's W^T), read by ldmatrix without its transpose, and by
// the TF32 kernel column by column.
TEST(GemmMmaEmulation, TransposedBFormsMatchTheReference) {
  // A derivative epilogue (the data gradient's act'(Z)) over grouped rows, three K steps.
  expect_mma_matches({.dtype = DType::kBFloat16,
                      .batch = 3,
                      .rows = 150,
                      .k = 96,
                      .n = 256,
                      .trans_b = true,
                      .activation = kernels::kActGeluGrad,
                      .grouped = true},
                     "gemm_mma", [](const kernels::GemmArgs& args) {
                       cuda::gemm_mma<cuda::bf16_t, 256, 96, false, kernels::kActGeluGrad, true, false>(args);
                     });
  expect_mma_matches(
      {.dtype = DType::kFloat16, .batch = 2, .rows = 130, .k = 32, .n = 128, .trans_b = true, .bias = true}, "gemm_mma",
      [](const kernels::GemmArgs& args) {
        cuda::gemm_mma<cuda::half_t, 128, 32, true, kernels::kActNone, true, false>(args);
      });
  expect_mma_matches({.dtype = DType::kFloat32,
                      .batch = 2,
                      .rows = 140,
                      .k = 48,
                      .n = 128,
                      .trans_b = true,
                      .activation = kernels::kActSiluGrad,
                      .tf32 = true},
                     "gemm_tf32", [](const kernels::GemmArgs& args) {
                       cuda::gemm_tf32<float, 128, 48, false, kernels::kActSiluGrad, true, false>(args);
                     });
}

// The weight gradient C [K, N] = A^T B over the rows (16-bit): A^T's fragments through
// ldmatrix's transpose, rows past a count zero-filled by the copies (NaN there must not count).
TEST(GemmMmaEmulation, WeightGradientsMatchTheReference) {
  // Rows not a multiple of the 32-row step, two row tiles of K, two column tiles.
  expect_mma_matches({.dtype = DType::kBFloat16, .batch = 2, .rows = 100, .k = 256, .n = 256, .trans_a = true},
                     "gemm_mma", [](const kernels::GemmArgs& args) {
                       cuda::gemm_mma<cuda::bf16_t, 256, 256, false, kernels::kActNone, false, true>(args);
                     });
  // Grouped: counts whose last step holds 13, none, 31 (one short of whole), 32 and 26 rows.
  expect_mma_matches({.dtype = DType::kFloat16,
                      .batch = 5,
                      .rows = 250,
                      .k = 128,
                      .n = 128,
                      .grouped = true,
                      .trans_a = true,
                      .counts = {13, 0, 191, 128, 250}},
                     "gemm_mma", [](const kernels::GemmArgs& args) {
                       cuda::gemm_mma<cuda::half_t, 128, 128, false, kernels::kActNone, false, true>(args);
                     });
}

// float32 weight gradients in TF32 (a layer that allows it), fragments read from the
// [rows][columns] tiles; NaN past the counts.
TEST(GemmMmaEmulation, Tf32WeightGradientsMatchTheReference) {
  expect_mma_matches({.dtype = DType::kFloat32,
                      .batch = 4,
                      .rows = 90,
                      .k = 256,
                      .n = 128,
                      .grouped = true,
                      .trans_a = true,
                      .counts = {90, 0, 7, 33},
                      .tf32 = true},
                     "gemm_tf32", [](const kernels::GemmArgs& args) {
                       cuda::gemm_tf32<float, 128, 256, false, kernels::kActNone, false, true>(args);
                     });
}

// cvt.rna.tf32.f32 keeps 10 mantissa bits, rounding half of the dropped bits away from zero.
TEST(GemmMmaEmulation, Tf32RoundsToNearestTiesAway) {
  auto as_float = [](unsigned bits) {
    float value;
    std::memcpy(&value, &bits, sizeof(value));
    return value;
  };
  EXPECT_EQ(as_float(emulation::round_to_tf32(1.0f + 0x1p-11f)), 1.0f + 0x1p-10f) << "a tie rounds away";
  EXPECT_EQ(as_float(emulation::round_to_tf32(-(1.0f + 0x1p-11f))), -(1.0f + 0x1p-10f));
  EXPECT_EQ(as_float(emulation::round_to_tf32(1.0f + 0x1p-12f)), 1.0f) << "below a tie rounds down";
  EXPECT_EQ(as_float(emulation::round_to_tf32(1.0f + 0x1p-10f + 0x1p-11f)), 1.0f + 0x1p-9f) << "an odd tie, away too";
  EXPECT_EQ(as_float(emulation::round_to_tf32(1.5f)), 1.5f);
}

// The emulator's own checks, so that a pass above means something.
TEST(GemmMmaEmulation, UnwaitedCopiesAndMisalignedRowsAreErrors) {
  static unsigned short stage[64];  // a static __shared__ array, as the kernels' are here
  alignas(16) static const unsigned short source[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  EXPECT_THROW(emulation::launch(1, 32,
                                 [] {
                                   cuda::cp_async_16(cuda::shared_address(stage), source, 16);
                                   cuda::cp_async_commit();
                                 }),
               Error)
      << "a copy never waited for";
  emulation::launch(1, 32, [] {
    cuda::cp_async_16(cuda::shared_address(&stage[8 * (threadIdx.x % 4)]), source, 8);
    cuda::cp_async_commit();
    cuda::cp_async_wait<0>();
  });
  EXPECT_EQ(stage[3], 4);
  EXPECT_EQ(stage[4], 0) << "past the source bytes: zeros";
  unsigned r[4];
  EXPECT_THROW(emulation::launch(1, 32, [&] { cuda::ldmatrix_x4(r, cuda::shared_address(&stage[1])); }), Error)
      << "ldmatrix rows are 16-byte aligned";
  std::vector<unsigned short> global(64);
  EXPECT_THROW(emulation::launch(1, 32, [&] { cuda::shared_address(global.data()); }), Error)
      << "global memory has no shared address";
}

}  // namespace
}  // namespace switchyard
