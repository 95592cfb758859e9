// The expert GEMMs on the GPU against the double reference, in the shapes that take each
// candidate: on a Hopper GPU the wgmma kernel (both B layouts, both tile widths, K deep enough
// to wrap its shared-memory ring, ragged and grouped rows, every epilogue), elsewhere the
// mma.sync kernel these shapes fall back to; float32 (no TF32) every form on the SIMT kernel;
// float32 with TF32 on wgmma where B is K-major ([N, K]) and for weight gradients (operands
// transposed ahead), else on the mma.sync TF32 kernel.
// Skips, saying why, without a CUDA device.
#include <gtest/gtest.h>

#include <algorithm>

#include <cmath>
#include <cstdlib>
#include <random>
#include <string>

#include "jit/kernels/gemm.h"
#include "runtime/context.h"
#include "runtime/gemm_ops.h"
#include "tests/reference/moe_reference.h"
#include "tests/support/dtype_values.h"
#include "tests/support/random_values.h"

namespace switchyard {
namespace {

using testing::uniform_values;

using testing::decode_values;
using testing::encode_values;

// Whether the family rules may pick the Hopper kernel on `gpu`: an sm_90a GPU, unless
// SWITCHYARD_GEMM says mma or simt (device-check also runs this suite so, for the fallbacks).
bool wgmma_in_play(const Device& gpu) {
  const char* ceiling = std::getenv("SWITCHYARD_GEMM");
  const bool automatic = ceiling == nullptr || std::string(ceiling).empty() || std::string(ceiling) == "auto";
  return gpu.target().sm == 90 && gpu.target().arch_specific && automatic;
}

class GpuGemm : public ::testing::TestWithParam<DType> {
 protected:
  void SetUp() override {
    const std::string reason = Context::cuda_unavailable_reason();
    if (!reason.empty()) GTEST_SKIP() << "GPU test skipped: " << reason;
  }
};

struct Case {
  int64_t batch, rows, k, n;
  bool trans_b;
  kernels::GemmActivation act;  // kActNone, kActGelu (with bias) or kActSwiglu (aux)
  bool grouped;                 // row counts per batch, one of them 0
};

// fp32 accumulation of exact products; the error is the final rounding to the dtype (sums of K
// products of values in [-1, 1] reach about sqrt(K)). TF32 products (10 mantissa bits an
// operand) err like float16's.
double tolerance(DType dt, bool tf32 = false) {
  if (tf32) return 5e-3;
  return dt == DType::kFloat32 ? 1e-4 : dt == DType::kFloat16 ? 2e-3 : 1e-2;
}

double silu(double x) {
  return x / (1 + std::exp(-x));
}

// The forward of `c` on the GPU against the double reference; `tf32`: float32 allowed on tensor
// cores. Checks the family the rule picks on a Hopper GPU.
void expect_forward_matches(DType dt, const Case& c, bool tf32, std::mt19937& rng) {
  SCOPED_TRACE(::testing::Message() << dtype_name(dt) << (tf32 ? " tf32 " : " ") << c.batch << "x" << c.rows << "x"
                                    << c.k << "x" << c.n << (c.trans_b ? " trans_b" : "") << " act " << c.act
                                    << (c.grouped ? " grouped" : ""));
  Context& context = Context::global();
  Device& gpu = context.cuda(0);
  const bool hopper = wgmma_in_play(gpu);
  const bool bias = c.act == kernels::kActGelu;
  const kernels::GemmShape shape{
      .dtype = dt, .n = c.n, .k = c.k, .trans_b = c.trans_b, .bias = bias, .activation = c.act, .allow_tf32 = tf32};
  const std::string family = kernels::gemm_spec(shape, gpu.target()).family;
  if (dt == DType::kFloat32 && !tf32) {  // CUDA cores
    EXPECT_EQ(family, "gemm_simt");
  } else if (hopper && dt == DType::kFloat32 && !c.trans_b) {  // TF32 on wgmma takes B K-major only
    EXPECT_NE(family, "gemm_wgmma");
  } else if (hopper) {
    EXPECT_EQ(family, "gemm_wgmma");
  } else {
    EXPECT_NE(family, "gemm_wgmma");
  }
  const std::string ha = encode_values(uniform_values(rng, c.batch * c.rows * c.k), dt);
  const std::string hw = encode_values(uniform_values(rng, c.batch * c.k * c.n), dt);
  const std::string hb = encode_values(uniform_values(rng, c.batch * c.n), dt);
  const std::string hx = encode_values(uniform_values(rng, c.batch * c.rows * c.n), dt);  // SwiGLU's gate input
  std::vector<int> counts(c.batch, static_cast<int>(c.rows));
  if (c.grouped)
    for (int64_t b = 0; b < c.batch; ++b) counts[b] = static_cast<int>((b * 97 + 13) % (c.rows + 1)) * (b != 1);
  const size_t out_bytes = c.batch * c.rows * c.n * dtype_size(dt);
  Buffer da(gpu, ha.size()), dw(gpu, hw.size()), db(gpu, hb.size()), dx(gpu, hx.size()), dc(gpu, out_bytes);
  gpu.copy_from_host(da.data(), ha.data(), ha.size());
  gpu.copy_from_host(dw.data(), hw.data(), hw.size());
  gpu.copy_from_host(db.data(), hb.data(), hb.size());
  gpu.copy_from_host(dx.data(), hx.data(), hx.size());
  const std::string poison(out_bytes, '\x7b');  // rows past a batch's count must keep it
  gpu.copy_from_host(dc.data(), poison.data(), poison.size());
  const Tensor tb = db.view(dt, {c.batch, c.n}), tx = dx.view(dt, {c.batch, c.rows, c.n});
  const Tensor tcounts(counts.data(), DType::kInt32, {c.batch});
  GemmOptions options;
  options.trans_b = c.trans_b;
  options.activation = c.act;
  options.bias = bias ? &tb : nullptr;
  options.aux = c.act == kernels::kActSwiglu ? &tx : nullptr;
  options.row_counts = c.grouped ? &tcounts : nullptr;
  options.allow_tf32 = tf32;
  batched_gemm(
      context, da.view(dt, {c.batch, c.rows, c.k}),
      dw.view(dt, c.trans_b ? std::vector<int64_t>{c.batch, c.n, c.k} : std::vector<int64_t>{c.batch, c.k, c.n}),
      dc.view(dt, {c.batch, c.rows, c.n}), options);
  std::string out(out_bytes, '\0');
  gpu.copy_to_host(out.data(), dc.data(), out.size());
  const auto got = decode_values(out, dt), poisoned = decode_values(poison, dt);
  const auto bias_values = decode_values(hb, dt), aux = decode_values(hx, dt);
  auto want =
      reference::gemm(decode_values(ha, dt), decode_values(hw, dt), bias ? &bias_values : nullptr, c.batch, c.rows, c.k,
                      c.n, c.trans_b, c.act == kernels::kActGelu ? reference::Act::kGelu : reference::Act::kNone);
  if (c.act == kernels::kActSwiglu)
    for (size_t i = 0; i < want.size(); ++i) want[i] *= silu(aux[i]);
  const double tol = tolerance(dt, tf32);
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t r = 0; r < c.rows; ++r)
      for (int64_t j = 0; j < c.n; ++j) {
        const size_t i = (b * c.rows + r) * c.n + j;
        if (r >= counts[b]) {
          ASSERT_EQ(got[i], poisoned[i]) << "batch " << b << " row " << r << " (count " << counts[b] << ") was written";
        } else {
          ASSERT_NEAR(got[i], want[i], tol * (1 + std::abs(want[i]))) << "batch " << b << " row " << r << " col " << j;
        }
      }
}

// The shapes of the Hopper kernel's cases: K deep enough to wrap the ring, both tile widths,
// both B layouts, grouped rows, every epilogue.
const Case kForwardCases[] = {Case{2, 300, 1152, 256, false, kernels::kActGelu, false},  // 18 K blocks: the ring wraps
                              Case{3, 200, 256, 384, true, kernels::kActNone, false},    // tile_n 128, B [N, K]
                              Case{4, 260, 512, 512, false, kernels::kActSwiglu, true},  // grouped, SwiGLU epilogue
                              Case{2, 129, 64, 128, true, kernels::kActGelu, true},      // one K block, 129 rows
                              Case{2, 150, 200, 256, false, kernels::kActGelu, false},   // a partial last K block
                              Case{2, 300, 72, 256, false, kernels::kActNone, false}};   // a k-block and 8 columns

TEST_P(GpuGemm, HopperShapesMatchTheReference) {
  std::mt19937 rng(31);
  for (const Case& c : kForwardCases) expect_forward_matches(GetParam(), c, false, rng);
}

// float32 layers that allow TF32: the same shapes on tensor cores, with B [N, K] (fc1 as stored,
// the data gradient's W^T) on wgmma on a Hopper GPU, plus a K of 96 (three 32-deep k-blocks).
TEST(GpuGemmTf32, ShapesMatchTheReference) {
  const std::string reason = Context::cuda_unavailable_reason();
  if (!reason.empty()) GTEST_SKIP() << "GPU test skipped: " << reason;
  std::mt19937 rng(34);
  for (const Case& c : kForwardCases) expect_forward_matches(DType::kFloat32, c, true, rng);
  expect_forward_matches(DType::kFloat32, Case{3, 170, 96, 256, true, kernels::kActSwiglu, true}, true, rng);
  expect_forward_matches(DType::kFloat32, Case{2, 140, 100, 128, true, kernels::kActNone, false}, true, rng);
}

// The weight gradient C [K, N] = A^T B over the rows of `dt` (`tf32`: float32 allowed on tensor
// cores) against the double reference: on Hopper the wgmma kernel reads 16-bit operands M/N-major,
// and float32 in TF32 transposed ahead (K-major, padded to whole 16-byte rows: 201 rows to 204);
// elsewhere mma.sync takes them (float32 in TF32) with K in whole 128-row tiles;
// rows not a multiple of its 64-row slices or 32-deep k-blocks (read as zeros past the end), K not
// a multiple of its 128-row tiles. Grouped rows bound the reduction per batch (rows past a count
// may hold anything, here NaN, and must not count: the Hopper kernel zeroes them in shared
// memory, or the transpose leaves them out).
void expect_weight_gradients_match(DType dt, bool tf32) {
  Context& context = Context::global();
  Device& gpu = context.cuda(0);
  const bool hopper = wgmma_in_play(gpu);
  std::mt19937 rng(33);
  struct WgradCase {
    int64_t batch, rows, k, n;
    bool grouped;
  };
  for (const WgradCase c :
       {WgradCase{3, 300, 192, 256, false}, WgradCase{2, 64, 128, 128, false}, WgradCase{3, 200, 128, 256, true},
        WgradCase{2, 300, 72, 512, false},  // 72 output rows: a 64-row box and 8 rows
        WgradCase{2, 201, 128, 128, false}, WgradCase{3, 201, 256, 128, true}}) {
    SCOPED_TRACE(::testing::Message() << dtype_name(dt) << (tf32 ? " tf32 " : " ") << c.batch << "x" << c.rows << "x"
                                      << c.k << "x" << c.n << (c.grouped ? " grouped" : ""));
    const kernels::GemmShape shape{
        .dtype = dt, .n = c.n, .k = c.k, .allow_tf32 = tf32, .trans_a = true, .grouped = c.grouped};
    const KernelSpec spec = kernels::gemm_spec(shape, gpu.target());
    if (hopper) {
      EXPECT_EQ(spec.family, dt == DType::kFloat32 && !tf32 ? "gemm_simt" : "gemm_wgmma");
      EXPECT_EQ(kernels::gemm_reads_transposed_operands(spec), tf32);
    } else {  // mma.sync: K in whole 128-row tiles, float32 in TF32
      const bool tensor_cores = c.k % 128 == 0 && (dt != DType::kFloat32 || tf32);
      EXPECT_EQ(spec.family, !tensor_cores ? "gemm_simt" : dt == DType::kFloat32 ? "gemm_tf32" : "gemm_mma");
    }
    std::vector<double> a = uniform_values(rng, c.batch * c.rows * c.k),
                        b = uniform_values(rng, c.batch * c.rows * c.n);
    std::vector<int> counts(c.batch, static_cast<int>(c.rows));
    if (c.grouped) {
      counts = {77, 0, static_cast<int>(c.rows)};
      for (int64_t bi = 0; bi < c.batch; ++bi)
        for (int64_t r = counts[bi]; r < c.rows; ++r) {
          std::fill_n(a.begin() + (bi * c.rows + r) * c.k, c.k, NAN);
          std::fill_n(b.begin() + (bi * c.rows + r) * c.n, c.n, NAN);
        }
    }
    const std::string ha = encode_values(a, dt), hb = encode_values(b, dt);
    Buffer da(gpu, ha.size()), db(gpu, hb.size()), dc(gpu, c.batch * c.k * c.n * dtype_size(dt));
    gpu.copy_from_host(da.data(), ha.data(), ha.size());
    gpu.copy_from_host(db.data(), hb.data(), hb.size());
    const Tensor tcounts(counts.data(), DType::kInt32, {c.batch});
    GemmOptions options;
    options.trans_a = true;
    options.row_counts = c.grouped ? &tcounts : nullptr;
    options.allow_tf32 = tf32;
    batched_gemm(context, da.view(dt, {c.batch, c.rows, c.k}), db.view(dt, {c.batch, c.rows, c.n}),
                 dc.view(dt, {c.batch, c.k, c.n}), options);
    std::string out(dc.bytes(), '\0');
    gpu.copy_to_host(out.data(), dc.data(), out.size());
    const auto got = decode_values(out, dt), av = decode_values(ha, dt), bv = decode_values(hb, dt);
    const double tol = tolerance(dt, tf32);
    for (int64_t bi = 0; bi < c.batch; ++bi)
      for (int64_t i = 0; i < c.k; ++i)
        for (int64_t j = 0; j < c.n; ++j) {
          double want = 0;
          for (int64_t r = 0; r < counts[bi]; ++r)
            want += av[(bi * c.rows + r) * c.k + i] * bv[(bi * c.rows + r) * c.n + j];
          ASSERT_NEAR(got[(bi * c.k + i) * c.n + j], want, tol * (1 + std::abs(want)))
              << "batch " << bi << " row " << i << " col " << j;
        }
  }
}

TEST_P(GpuGemm, WeightGradientMatchesTheReference) {
  expect_weight_gradients_match(GetParam(), false);
}

// float32 layers that allow TF32: weight gradients on tensor cores too (on Hopper, wgmma with
// the operands transposed ahead).
TEST(GpuGemmTf32, WeightGradientMatchesTheReference) {
  const std::string reason = Context::cuda_unavailable_reason();
  if (!reason.empty()) GTEST_SKIP() << "GPU test skipped: " << reason;
  expect_weight_gradients_match(DType::kFloat32, true);
}

// A GEMM whose operands are not 16-byte aligned cannot be read by TMA or cp.async: it still
// computes, on the SIMT kernel, the same values.
TEST_P(GpuGemm, UnalignedOperandsTakeTheSimtKernelAndAgree) {
  const DType dt = GetParam();
  Context& context = Context::global();
  Device& gpu = context.cuda(0);
  std::mt19937 rng(32);
  const int64_t rows = 70, k = 128, n = 128;
  const std::string ha = encode_values(uniform_values(rng, rows * k + 1), dt),
                    hw = encode_values(uniform_values(rng, k * n), dt);
  Buffer da(gpu, ha.size()), dw(gpu, hw.size()), dc(gpu, rows * n * dtype_size(dt));
  gpu.copy_from_host(da.data(), ha.data(), ha.size());
  gpu.copy_from_host(dw.data(), hw.data(), hw.size());
  // A starts one element (2 bytes) into its buffer.
  const Tensor a(static_cast<char*>(da.data()) + dtype_size(dt), dt, {1, rows, k}, gpu.ref());
  EXPECT_EQ(kernels::gemm_spec({.dtype = dt, .n = n, .k = k, .aligned_16 = false}, gpu.target()).family, "gemm_simt");
  batched_gemm(context, a, dw.view(dt, {1, k, n}), dc.view(dt, {1, rows, n}));
  std::string out(dc.bytes(), '\0');
  gpu.copy_to_host(out.data(), dc.data(), out.size());
  auto av = decode_values(ha, dt);
  av.erase(av.begin());
  const auto want = reference::gemm(av, decode_values(hw, dt), nullptr, 1, rows, k, n, false, reference::Act::kNone);
  const auto got = decode_values(out, dt);
  const double tol = tolerance(dt);
  for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], tol * (1 + std::abs(want[i]))) << i;
}

// float32 (without TF32) runs every shape on the SIMT kernel: its forms on the GPU.
INSTANTIATE_TEST_SUITE_P(Dtypes, GpuGemm, ::testing::Values(DType::kFloat16, DType::kBFloat16, DType::kFloat32),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

}  // namespace
}  // namespace switchyard
