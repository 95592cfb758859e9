// The SIMT GEMM template (templates/switchyard/cuda/gemm_simt.cuh) run on the host through
// tests/support/cuda_emulation.h, against the double reference: every form it serves (forward
// with and without B transposed, the epilogues, grouped rows, the weight gradient over grouped
// rows), each storage type, both tile widths, and shapes that are multiples of neither the tile
// nor the reduction step. The grid is the family's own launch config, so a tile rule and a kernel
// that disagree fail here, without a GPU. The emulator's own checks (a missing barrier, a barrier
// only part of a block reaches) are tested too, so that a pass means something.
#include "tests/support/cuda_emulation.h"  // before the templates

#include <gtest/gtest.h>

#include <switchyard/cuda/gemm_simt.cuh>

#include "core/error.h"
#include "jit/kernels/gemm.h"
#include "tests/support/gemm_cases.h"

namespace switchyard {
namespace {

// The kernel the family's rule chooses for `shape` (unaligned operands: the SIMT kernel for every
// dtype on any GPU), with the tile this instantiation was written for.
KernelSpec simt_spec(const kernels::GemmShape& shape, int tile) {
  const KernelSpec spec = kernels::gemm_spec(shape, Target::cuda(90, true));
  EXPECT_EQ(spec.family, "gemm_simt");
  EXPECT_EQ(spec.int_param("tile"), tile) << "the family's tile rule and the test's instantiation disagree";
  return spec;
}

// The template's tile for N and K, as the family's rule picks it (simt_spec checks the two agree).
constexpr int tile_for(int n, int k) {
  const bool narrow = n <= kernels::kGemmSimtTileNarrow || k <= kernels::kGemmSimtTileNarrow;
  return narrow ? kernels::kGemmSimtTileNarrow : kernels::kGemmSimtTile;
}

struct Problem {
  int64_t batch, rows;
  bool grouped;  // per-batch counts, one of them 0 and one short of a tile
};

// Runs gemm_simt for the case (the forward, or with kTransA the weight gradient over grouped rows
// with NaN past the counts) and checks C against the reference.
template <typename T, int kN, int kK, bool kTransA, bool kTransB, bool kBias, int kAct>
void expect_simt_matches(DType dt, const Problem& p) {
  const testing::GemmCase gemm{.dtype = dt,
                               .batch = p.batch,
                               .rows = p.rows,
                               .k = kK,
                               .n = kN,
                               .trans_b = kTransB,
                               .bias = kBias,
                               .activation = kAct,
                               .grouped = p.grouped,
                               .trans_a = kTransA};
  SCOPED_TRACE(testing::describe(gemm));
  constexpr int kTile = tile_for(kN, kK);
  const KernelSpec spec = simt_spec(testing::gemm_shape(gemm, false), kTile);
  testing::GemmBuffers buffers = testing::gemm_buffers(gemm, kTransA ? 43 : 41);
  const kernels::GemmArgs args = testing::gemm_args(gemm, buffers);
  const LaunchConfig launch = kernels::gemm_launch_config(spec, {p.batch, p.rows, p.rows, kK, kN, 132});
  ASSERT_EQ(launch.block, static_cast<unsigned>(kernels::kGemmThreads));
  emulation::launch(launch, [&] { cuda::gemm_simt<T, kN, kK, kTransA, kTransB, kBias, kAct, kTile>(args); });
  testing::expect_gemm_output(gemm, buffers);
}

template <typename T, int kN, int kK, bool kTransB, bool kBias, int kAct>
void expect_forward_matches(DType dt, const Problem& p) {
  expect_simt_matches<T, kN, kK, false, kTransB, kBias, kAct>(dt, p);
}

// C [K, N] = A^T B over each batch's rows; rows past a grouped count hold NaN and must not count.
template <typename T, int kN, int kK>
void expect_weight_gradient_matches(DType dt, const Problem& p) {
  expect_simt_matches<T, kN, kK, true, false, false, kernels::kActNone>(dt, p);
}

TEST(GemmSimtEmulation, ForwardFormsMatchTheReference) {
  // 128-wide tiles: N and rows past one tile and not a multiple of it, K not a multiple of 8.
  expect_forward_matches<float, 200, 76, false, true, kernels::kActGelu>(DType::kFloat32, {2, 150, false});
  expect_forward_matches<cuda::bf16_t, 200, 76, true, false, kernels::kActNone>(DType::kBFloat16, {2, 150, false});
  expect_forward_matches<cuda::half_t, 136, 72, false, false, kernels::kActSwiglu>(DType::kFloat16, {3, 140, true});
  // 64-wide tiles (N or K of at most 64: a gate's experts), relu with bias, B transposed.
  expect_forward_matches<float, 48, 100, true, true, kernels::kActRelu>(DType::kFloat32, {2, 70, true});
  expect_forward_matches<float, 8, 24, false, false, kernels::kActNone>(DType::kFloat32, {1, 5, false});
  expect_forward_matches<cuda::bf16_t, 200, 8, false, true, kernels::kActNone>(DType::kBFloat16, {1, 130, false});
  // The top gate's logits: wg [E, M] read as stored (B [N, K]), 8 experts, M past one k-tile.
  expect_forward_matches<float, 8, 160, true, false, kernels::kActNone>(DType::kFloat32, {1, 90, false});
}

TEST(GemmSimtEmulation, WeightGradientsMatchTheReference) {
  expect_weight_gradient_matches<float, 200, 136>(DType::kFloat32, {2, 77, false});
  expect_weight_gradient_matches<float, 130, 72>(DType::kFloat32, {3, 150, true});  // one batch without rows
  expect_weight_gradient_matches<cuda::bf16_t, 40, 70>(DType::kBFloat16, {3, 37, true});
}

// A kernel that reads its neighbour's shared-memory write without a barrier between them: the
// emulator's alternating order hands it a stale value, as a GPU may.
TEST(GemmSimtEmulation, AMissingBarrierIsSeen) {
  std::vector<int> out(64, -1);
  auto racy = [&](bool with_barrier) {
    __shared__ int slots[64];
    slots[threadIdx.x] = static_cast<int>(threadIdx.x);
    if (with_barrier) __syncthreads();
    out[threadIdx.x] = slots[(threadIdx.x + 1) % 64];
    __syncthreads();
    slots[threadIdx.x] = -1;  // the next launch starts from garbage
  };
  emulation::launch(1, 64, [&] { racy(true); });
  for (int t = 0; t < 64; ++t) EXPECT_EQ(out[t], (t + 1) % 64);
  emulation::launch(1, 64, [&] { racy(false); });
  int stale = 0;
  for (int t = 0; t < 64; ++t) stale += out[t] != (t + 1) % 64;
  EXPECT_GT(stale, 0) << "the emulator ran a racy kernel as if it had its barrier";
}

TEST(GemmSimtEmulation, ABarrierPartOfABlockSkipsIsAnError) {
  EXPECT_THROW(emulation::launch(2, 32,
                                 [] {
                                   if (threadIdx.x < 16) return;
                                   __syncthreads();
                                 }),
               Error);
  // More dynamic shared memory than a Hopper block has.
  EXPECT_THROW(emulation::launch(LaunchConfig{1, 32, emulation::kMaxDynamicSharedBytes + 16}, [] {}), Error);
  // The emulator is usable again after the errors.
  int ran = 0;
  emulation::launch(1, 4, [&] { ++ran; });
  EXPECT_EQ(ran, 4);
}

}  // namespace
}  // namespace switchyard
