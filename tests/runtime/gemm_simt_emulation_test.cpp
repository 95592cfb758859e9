// The SIMT GEMM template (templates/switchyard/cuda/gemm_simt.cuh) run on the host through
// tests/support/cuda_emulation.h, against the double reference: every form it serves (forward
// with and without B transposed, the epilogues, grouped rows, the weight gradient over grouped
// rows), each storage type, both tile widths, and shapes that are multiples of neither the tile
// nor the reduction step. The grid is the family's own launch config, so a tile rule and a kernel
// that disagree fail here, without a GPU. The emulator's own checks (a missing barrier, a barrier
// only part of a block reaches) are tested too, so that a pass means something.
#include "tests/support/cuda_emulation.h"  // before the templates

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <switchyard/cuda/gemm_simt.cuh>

#include "core/error.h"
#include "jit/kernels/gemm.h"
#include "tests/reference/moe_reference.h"
#include "tests/support/dtype_values.h"
#include "tests/support/random_values.h"

namespace switchyard {
namespace {

using testing::uniform_values;

using testing::decode_values;
using testing::encode_values;

// The tolerance of a value rounded to `dt` after float sums of short reductions.
double tolerance(DType dt) {
  return dt == DType::kFloat32 ? 1e-5 : dt == DType::kFloat16 ? 2e-3 : 1e-2;
}

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

std::vector<int> counts_of(const Problem& p) {
  std::vector<int> counts(p.batch, static_cast<int>(p.rows));
  if (p.grouped)
    for (int64_t b = 0; b < p.batch; ++b) counts[b] = b == 1 ? 0 : static_cast<int>((b * 97 + 13) % (p.rows + 1));
  return counts;
}

template <typename T, int kN, int kK, bool kTransB, bool kBias, int kAct>
void expect_forward_matches(DType dt, const Problem& p) {
  SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " " << p.batch << "x" << p.rows << "x" << kK << "x" << kN
                                    << (kTransB ? " trans_b" : "") << " act " << kAct << (p.grouped ? " grouped" : ""));
  constexpr int kTile = tile_for(kN, kK);
  const KernelSpec spec = simt_spec({.dtype = dt,
                                     .n = kN,
                                     .k = kK,
                                     .trans_b = kTransB,
                                     .bias = kBias,
                                     .activation = kernels::GemmActivation(kAct),
                                     .aligned_16 = false},
                                    kTile);
  std::mt19937 rng(41);
  const std::string a = encode_values(uniform_values(rng, p.batch * p.rows * kK), dt);
  const std::string w = encode_values(uniform_values(rng, p.batch * kK * kN), dt);
  const std::string bias = encode_values(uniform_values(rng, p.batch * kN), dt);
  const std::string aux = encode_values(uniform_values(rng, p.batch * p.rows * kN), dt);
  const std::string poison = encode_values(std::vector<double>(p.batch * p.rows * kN, 7.0), dt);
  std::string c = poison;
  const std::vector<int> counts = counts_of(p);
  const kernels::GemmArgs args{a.data(),
                               w.data(),
                               kBias ? bias.data() : nullptr,
                               kernels::gemm_uses_aux(kAct) ? aux.data() : nullptr,
                               c.data(),
                               p.grouped ? counts.data() : nullptr,
                               p.rows * kK,
                               int64_t{kK} * kN,
                               p.rows * kN,
                               static_cast<int>(p.rows),
                               static_cast<int>(p.batch),
                               nullptr,
                               0};
  const LaunchConfig launch = kernels::gemm_launch_config(spec, {p.batch, p.rows, p.rows, kK, kN, 132});
  ASSERT_EQ(launch.block, static_cast<unsigned>(kernels::kGemmThreads));
  emulation::launch(launch, [&] { cuda::gemm_simt<T, kN, kK, false, kTransB, kBias, kAct, kTile>(args); });

  const auto bias_values = decode_values(bias, dt), aux_values = decode_values(aux, dt);
  const reference::Act act = kAct == kernels::kActGelu   ? reference::Act::kGelu
                             : kAct == kernels::kActRelu ? reference::Act::kRelu
                                                         : reference::Act::kNone;
  auto want = reference::gemm(decode_values(a, dt), decode_values(w, dt), kBias ? &bias_values : nullptr, p.batch,
                              p.rows, kK, kN, kTransB, act);
  if (kAct == kernels::kActSwiglu)
    for (size_t i = 0; i < want.size(); ++i) want[i] *= aux_values[i] / (1 + std::exp(-aux_values[i]));
  const auto got = decode_values(c, dt);
  for (int64_t b = 0; b < p.batch; ++b)
    for (int64_t r = 0; r < p.rows; ++r)
      for (int64_t j = 0; j < kN; ++j) {
        const size_t i = (b * p.rows + r) * kN + j;
        if (r >= counts[b])
          ASSERT_EQ(got[i], 7.0) << "batch " << b << " row " << r << " (count " << counts[b] << ") was written";
        else
          ASSERT_NEAR(got[i], want[i], tolerance(dt) * (1 + std::abs(want[i])))
              << "batch " << b << " row " << r << " col " << j;
      }
}

// C [K, N] = A^T B over each batch's rows; rows past a grouped count hold NaN and must not count.
template <typename T, int kN, int kK>
void expect_weight_gradient_matches(DType dt, const Problem& p) {
  SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " weight gradient " << p.batch << "x" << p.rows << "x" << kK
                                    << "x" << kN << (p.grouped ? " grouped" : ""));
  constexpr int kTile = tile_for(kN, kK);
  const KernelSpec spec =
      simt_spec({.dtype = dt, .n = kN, .k = kK, .trans_a = true, .aligned_16 = false, .grouped = p.grouped}, kTile);
  std::mt19937 rng(43);
  std::vector<double> a = uniform_values(rng, p.batch * p.rows * kK), b = uniform_values(rng, p.batch * p.rows * kN);
  const std::vector<int> counts = counts_of(p);
  for (int64_t bi = 0; bi < p.batch; ++bi)
    for (int64_t r = counts[bi]; r < p.rows; ++r) a[(bi * p.rows + r) * kK] = b[(bi * p.rows + r) * kN] = NAN;
  const std::string ha = encode_values(a, dt), hb = encode_values(b, dt);
  std::string c = encode_values(std::vector<double>(p.batch * kK * kN, 7.0), dt);
  const kernels::GemmArgs args{ha.data(),
                               hb.data(),
                               nullptr,
                               nullptr,
                               c.data(),
                               p.grouped ? counts.data() : nullptr,
                               p.rows * kK,
                               p.rows * kN,
                               int64_t{kK} * kN,
                               static_cast<int>(p.rows),
                               static_cast<int>(p.batch),
                               nullptr,
                               0};
  const LaunchConfig launch = kernels::gemm_launch_config(spec, {p.batch, p.rows, p.rows, kK, kN, 132});
  emulation::launch(launch, [&] { cuda::gemm_simt<T, kN, kK, true, false, false, kernels::kActNone, kTile>(args); });
  const auto got = decode_values(c, dt), av = decode_values(ha, dt), bv = decode_values(hb, dt);
  for (int64_t bi = 0; bi < p.batch; ++bi)
    for (int64_t i = 0; i < kK; ++i)
      for (int64_t j = 0; j < kN; ++j) {
        double want = 0;
        for (int64_t r = 0; r < counts[bi]; ++r)
          want += av[(bi * p.rows + r) * kK + i] * bv[(bi * p.rows + r) * kN + j];
        ASSERT_NEAR(got[(bi * kK + i) * kN + j], want, tolerance(dt) * (1 + std::abs(want)))
            << "batch " << bi << " row " << i << " col " << j;
      }
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
  // Dynamic shared memory, which a family's launch may ask for, is not emulated.
  EXPECT_THROW(emulation::launch(LaunchConfig{1, 32, 1024}, [] {}), Error);
  // The emulator is usable again after the errors.
  int ran = 0;
  emulation::launch(1, 4, [&] { ++ran; });
  EXPECT_EQ(ran, 4);
}

}  // namespace
}  // namespace switchyard
