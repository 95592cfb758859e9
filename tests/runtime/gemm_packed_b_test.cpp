// B's panels packed ahead (pack_gemm_b, GemmOptions::b_panels) for the CPU's bfloat16 dot-product
// GEMM and its float32 GEMM: the same bits as packing B at each call, whole tiles read from the
// panels and the columns past them from B, and the bad inputs named.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/settings.h"
#include "jit/kernel_family.h"
#include "jit/kernels/gemm.h"
#include "runtime/gemm_ops.h"
#include "tests/support/dot_product_cpu.h"
#include "tests/support/dtype_values.h"
#include "tests/support/expect_error.h"
#include "tests/support/random_values.h"
#include "tests/support/test_support.h"

namespace switchyard {
namespace {

struct PanelCase {
  int64_t batch, rows, k, n;
  bool trans_b;
  kernels::GemmActivation act;
  std::vector<int> counts;  // empty: every row
};

struct Operands {
  DType dt;
  std::string a, w, bias, aux;
  std::vector<int> counts;
  std::vector<int64_t> w_shape;
};

Operands operands_for(const PanelCase& c, DType dt, std::mt19937& rng) {
  Operands o;
  o.dt = dt;
  o.a = testing::encode_values(testing::uniform_values(rng, c.batch * c.rows * c.k), o.dt);
  o.w = testing::encode_values(testing::uniform_values(rng, c.batch * c.k * c.n), o.dt);
  o.bias = testing::encode_values(testing::uniform_values(rng, c.batch * c.n), o.dt);
  o.aux = testing::encode_values(testing::uniform_values(rng, c.batch * c.rows * c.n), o.dt);
  o.counts = c.counts;
  o.w_shape = c.trans_b ? std::vector<int64_t>{c.batch, c.n, c.k} : std::vector<int64_t>{c.batch, c.k, c.n};
  return o;
}

kernels::GemmShape shape_of(const PanelCase& c, DType dt) {
  return {.dtype = dt,
          .n = c.n,
          .k = c.k,
          .trans_b = c.trans_b,
          .bias = true,
          .activation = c.act,
          .grouped = !c.counts.empty()};
}

// C's bits from a batched_gemm of `c` reading B from `w`, and its whole tiles from `panels` where given.
std::string run(Context& context, const PanelCase& c, Operands& o, std::string& w, std::vector<int32_t>* panels) {
  std::string out = testing::encode_values(std::vector<double>(c.batch * c.rows * c.n, -99), o.dt);
  Tensor bias(o.bias.data(), o.dt, {c.batch, c.n}), aux(o.aux.data(), o.dt, {c.batch, c.rows, c.n}),
      counts(o.counts.data(), DType::kInt32, {c.batch});
  Tensor packed = panels ? Tensor(panels->data(), DType::kInt32, {static_cast<int64_t>(panels->size())}) : Tensor();
  GemmOptions options;
  options.trans_b = c.trans_b;
  options.bias = &bias;
  options.activation = c.act;
  options.aux = kernels::gemm_uses_aux(c.act) ? &aux : nullptr;
  options.row_counts = c.counts.empty() ? nullptr : &counts;
  options.b_panels = panels ? &packed : nullptr;
  batched_gemm(context, Tensor(o.a.data(), o.dt, {c.batch, c.rows, c.k}), Tensor(w.data(), o.dt, o.w_shape),
               Tensor(out.data(), o.dt, {c.batch, c.rows, c.n}), options);
  return out;
}

std::vector<int32_t> pack(Context& context, const PanelCase& c, Operands& o, std::string& w) {
  const int64_t words = gemm_panels_words(shape_of(c, o.dt), c.batch, context.cpu().target());
  EXPECT_GT(words, 0);
  std::vector<int32_t> panels(static_cast<size_t>(words), -1);
  pack_gemm_b(context, Tensor(w.data(), o.dt, o.w_shape), shape_of(c, o.dt),
              Tensor(panels.data(), DType::kInt32, {words}));
  return panels;
}

// Few rows (the span path they replace) over chunks with an odd tail, with a scalar column tail
// (4116 = 64 tiles, a vector and 4 columns); odd K with B transposed and a tail past the last tile
// (200 = 3 tiles and 8 columns); grouped rows with an empty expert and the SwiGLU epilogue; many
// row tiles; each on one thread, two, and more threads than row tiles (blocks split the columns).
const PanelCase kCases[] = {{2, 16, 300, 4116, false, kernels::kActGelu, {}},
                            {2, 37, 301, 200, true, kernels::kActRelu, {}},
                            {3, 7, 64, 1100, false, kernels::kActSwiglu, {7, 0, 3}},
                            {1, 200, 257, 130, false, kernels::kActNone, {}}};

// A dtype and the CPU to compile for: bfloat16 and float32 where the host's GEMMs read panels,
// float32 also on AVX2's and SSE's narrower tiles (16 and 8 columns).
struct PanelParam {
  DType dt;
  const char* cpu;  // empty: testing::packed_panels_cpu
  const char* name;
};

testing::DotProductCpu panel_cpu(const PanelParam& param) {
  if (param.cpu[0] == '\0') return testing::packed_panels_cpu(param.dt);
#if !defined(__x86_64__)
  return {false, "", "x86-64 CPU names"};
#endif
  return {true, param.cpu, ""};
}

class GemmPackedBDtype : public ::testing::TestWithParam<PanelParam> {};

TEST_P(GemmPackedBDtype, PanelsGiveTheBitsOfPackingAtEachCall) {
  const testing::DotProductCpu cpu = panel_cpu(GetParam());
  if (!cpu.usable) GTEST_SKIP() << cpu.why_not;
  testing::TempDir dir;  // one cache: the thread counts share the kernels
  for (unsigned threads : {1u, 2u, 16u}) {
    Settings settings;
    settings.cache_dir = dir.path();
    settings.cpu = cpu.cpu;
    settings.num_threads = threads;
    Context context(settings);
    std::mt19937 rng(41);
    for (const PanelCase& c : kCases) {
      SCOPED_TRACE("rows " + std::to_string(c.rows) + " k " + std::to_string(c.k) + " n " + std::to_string(c.n) +
                   (c.trans_b ? " trans_b, " : ", ") + std::to_string(threads) + " threads");
      Operands o = operands_for(c, GetParam().dt, rng);
      ASSERT_TRUE(kernels::gemm_reads_packed_b(kernels::gemm_spec(shape_of(c, o.dt), context.cpu().target())));
      std::vector<int32_t> panels = pack(context, c, o, o.w);
      EXPECT_EQ(run(context, c, o, o.w, &panels), run(context, c, o, o.w, nullptr));
    }
  }
}

// Panels packed from another weight: C's whole column tiles are that weight's product, the
// columns past them this one's, so the kernel reads the panels where it should and only there.
TEST_P(GemmPackedBDtype, WholeTilesComeFromThePanelsAndTheRestFromB) {
  const testing::DotProductCpu cpu = panel_cpu(GetParam());
  if (!cpu.usable) GTEST_SKIP() << cpu.why_not;
  Settings settings = Settings::from_environment();
  settings.cpu = cpu.cpu;
  Context context(settings);
  std::mt19937 rng(42);
  const PanelCase c = kCases[0];
  Operands o = operands_for(c, GetParam().dt, rng);
  std::string other = testing::encode_values(testing::uniform_values(rng, c.batch * c.k * c.n), o.dt);
  std::vector<int32_t> panels = pack(context, c, o, other);
  const auto mixed = testing::decode_values(run(context, c, o, o.w, &panels), o.dt);
  const auto from_other = testing::decode_values(run(context, c, o, other, nullptr), o.dt);
  const auto from_w = testing::decode_values(run(context, c, o, o.w, nullptr), o.dt);
  const int64_t tile = kernels::gemm_tile_shape(kernels::gemm_spec(shape_of(c, o.dt), context.cpu().target())).n;
  const int64_t whole = c.n / tile * tile;
  ASSERT_LT(whole, c.n);
  for (int64_t r = 0; r < c.batch * c.rows; ++r)
    for (int64_t j = 0; j < c.n; ++j) {
      const size_t at = static_cast<size_t>(r * c.n + j);
      ASSERT_EQ(mixed[at], j < whole ? from_other[at] : from_w[at]) << "row " << r << " column " << j;
    }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, GemmPackedBDtype,
                         ::testing::Values(PanelParam{DType::kBFloat16, "", "bfloat16"},
                                           PanelParam{DType::kFloat32, "", "float32"},
                                           PanelParam{DType::kFloat32, "x86-64-v3", "float32_avx2"},
                                           PanelParam{DType::kFloat32, "x86-64", "float32_sse"}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(GemmPackedB, BadPanelsAndShapesThatReadNoneAreNamed) {
  Context context(Settings::from_environment());
  const Target& target = context.cpu().target();
  // N = 192: whole tiles of 64 (AVX-512), 16 (AVX2) and 12 (NEON) columns.
  std::vector<float> w(2 * 64 * 192), a(2 * 3 * 64), c(2 * 3 * 192);
  std::vector<int32_t> panels(2 * 64 * 192);
  // float16 computes in floats, whose panels would be twice its weights: it reads none.
  const kernels::GemmShape f16{.dtype = DType::kFloat16, .n = 192, .k = 64};
  EXPECT_EQ(gemm_panels_words(f16, 2, target), 0);
  const Tensor w16(w.data(), DType::kFloat16, {2, 64, 192}), all(panels.data(), DType::kInt32, {2 * 64 * 192});
  testing::expect_user_error([&] { pack_gemm_b(context, w16, f16, all); }, "reads no packed panels");
  auto gemm_given = [&](const Tensor& weight, const Tensor& given) {
    GemmOptions options;
    options.b_panels = &given;
    batched_gemm(context, Tensor(a.data(), weight.dtype(), {2, 3, 64}), weight,
                 Tensor(c.data(), weight.dtype(), {2, 3, 192}), options);
  };
  testing::expect_user_error([&] { gemm_given(w16, all); }, "reads no packed panels");
  // float32: a word a column and step, so the panels hold as many words as the weight has floats.
  const kernels::GemmShape f32{.dtype = DType::kFloat32, .n = 192, .k = 64};
  ASSERT_EQ(gemm_panels_words(f32, 2, target), 2 * 64 * 192);
  const Tensor w32(w.data(), DType::kFloat32, {2, 64, 192}), half(panels.data(), DType::kInt32, {64 * 192});
  testing::expect_user_error([&] { pack_gemm_b(context, w32, f32, half); }, "panels");
  testing::expect_user_error(
      [&] { pack_gemm_b(context, w32, f32, Tensor(panels.data(), DType::kFloat32, {2 * 64 * 192})); }, "panels");
  testing::expect_user_error(
      [&] {
        pack_gemm_b(context, Tensor(w.data(), DType::kFloat32, {2, 32, 192}), f32, all);
      },
      "weight to pack");
  testing::expect_user_error([&] { gemm_given(w32, half); }, "b_panels");
  // bfloat16's dot products take a word for two steps.
  const testing::DotProductCpu dot = testing::dot_product_cpu();
  if (!dot.usable) return;
  Settings settings = Settings::from_environment();
  settings.cpu = dot.cpu;
  Context dot_context(settings);
  const kernels::GemmShape bf16{.dtype = DType::kBFloat16, .n = 192, .k = 64};
  ASSERT_EQ(gemm_panels_words(bf16, 2, dot_context.cpu().target()), 2 * 32 * 192);
  const Tensor wb(w.data(), DType::kBFloat16, {2, 64, 192});
  testing::expect_user_error([&] { pack_gemm_b(dot_context, wb, bf16, all); }, "panels");  // float32's count
}

TEST(GemmPackedB, SpecsOfThePackingAreChecked) {
  KernelSpec spec{"gemm_pack_b",
                  {{"dtype", DType::kBFloat16}, {"n", 64}, {"k", 64}, {"trans_b", false}, {"tile_cols", 40}},
                  Target::cpu()};
  testing::expect_user_error([&] { validate_spec(spec); }, "tile_cols must be a multiple of 16");
  spec.params.back() = {"tile_cols", 128};
  testing::expect_user_error([&] { validate_spec(spec); }, "n at least one tile");
  spec.params.back() = {"tile_cols", 64};
  validate_spec(spec);
  // float32's tiles are whole float vectors: 12 columns (NEON) pass, 10 do not.
  spec.params.front() = {"dtype", DType::kFloat32};
  spec.params.back() = {"tile_cols", 10};
  testing::expect_user_error([&] { validate_spec(spec); }, "tile_cols must be a multiple of 4");
  spec.params.back() = {"tile_cols", 12};
  validate_spec(spec);
  spec.params.front() = {"dtype", DType::kFloat16};
  testing::expect_user_error([&] { validate_spec(spec); }, "float16");
}

}  // namespace
}  // namespace switchyard
