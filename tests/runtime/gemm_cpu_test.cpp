// The CPU GEMM template against the reference: shapes with and without full tiles, both B
// layouts, bias, every activation, the SwiGLU epilogue and grouped (row-counted) batches.
#include <gtest/gtest.h>

#include <pthread.h>

#include <cmath>
#include <functional>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/settings.h"
#include "jit/cpu_target.h"
#include "jit/kernels/gemm.h"
#include "runtime/cpu_scratch.h"
#include "runtime/gemm_ops.h"
#include "tests/reference/moe_reference.h"
#include "tests/support/dtype_values.h"
#include "tests/support/test_support.h"

namespace switchyard {
namespace {

using reference::Act;

template <typename T, typename U>
std::vector<T> cast(const std::vector<U>& v) {
  return std::vector<T>(v.begin(), v.end());
}

std::vector<double> random_vector(std::mt19937& rng, size_t n) {
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<double> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

// The weight operand's shape: [B, R, N] for the weight gradient (trans_a), [B, N, K] read
// transposed (trans_b), else [B, K, N].
std::vector<int64_t> weight_shape(int64_t batch, int64_t rows, int64_t k, int64_t n, bool trans_a, bool trans_b) {
  if (trans_a) return {batch, rows, n};
  return trans_b ? std::vector<int64_t>{batch, n, k} : std::vector<int64_t>{batch, k, n};
}

// a [B, R, K] as [B, K, R].
std::vector<double> transposed(const std::vector<double>& a, int64_t batch, int64_t rows, int64_t k) {
  std::vector<double> t(a.size());
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t kk = 0; kk < k; ++kk) t[(b * k + kk) * rows + r] = a[(b * rows + r) * k + kk];
  return t;
}

struct FloatCase {
  int64_t batch, rows, k, n;
  bool trans_b, bias;
  Act act;
  bool one_block = false;  // the whole batch in one block of the grid
};

// One case in T against the double reference.
template <typename T>
void expect_matches_reference(Context& context, const FloatCase& c, std::mt19937& rng) {
  const DType dt = std::is_same_v<T, double> ? DType::kFloat64 : DType::kFloat32;
  // NOTE: K products summed in T with FMA in another order than the double reference: allow
  // sqrt(K) ulps-ish growth of the rounding error relative to the sum of |terms|.
  const double eps = std::is_same_v<T, double> ? 1e-13 : 2e-6;
  const kernels::GemmActivation acts[] = {kernels::kActNone, kernels::kActRelu, kernels::kActGelu, kernels::kActSilu};
  SCOPED_TRACE("batch " + std::to_string(c.batch) + " rows " + std::to_string(c.rows) + " k " + std::to_string(c.k) +
               " n " + std::to_string(c.n) + (c.trans_b ? " trans_b" : ""));
  auto a = random_vector(rng, c.batch * c.rows * c.k), w = random_vector(rng, c.batch * c.k * c.n),
       bias = random_vector(rng, c.batch * c.n);
  auto ta = cast<T>(a), tw = cast<T>(w), tb = cast<T>(bias);
  std::vector<T> out(c.batch * c.rows * c.n, T(-99));
  Tensor bias_t(tb.data(), dt, {c.batch, c.n});
  GemmOptions options;
  options.trans_b = c.trans_b;
  options.bias = c.bias ? &bias_t : nullptr;
  options.activation = acts[static_cast<int>(c.act)];
  batched_gemm(context, Tensor(ta.data(), dt, {c.batch, c.rows, c.k}),
               Tensor(tw.data(), dt,
                      c.trans_b ? std::vector<int64_t>{c.batch, c.n, c.k} : std::vector<int64_t>{c.batch, c.k, c.n}),
               Tensor(out.data(), dt, {c.batch, c.rows, c.n}), options);
  const std::vector<double> stored_bias = cast<double>(tb);  // the values the kernel sees
  auto want = reference::gemm(cast<double>(ta), cast<double>(tw), c.bias ? &stored_bias : nullptr, c.batch, c.rows, c.k,
                              c.n, c.trans_b, c.act);
  for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(out[i], want[i], eps * (c.k + 1)) << "element " << i;
}

template <typename T>
class GemmCpuTest : public ::testing::Test {};
using GemmTypes = ::testing::Types<float, double>;
TYPED_TEST_SUITE(GemmCpuTest, GemmTypes);

TYPED_TEST(GemmCpuTest, MatchesReference) {
  std::mt19937 rng(42);
  const FloatCase cases[] = {{1, 5, 3, 4, false, false, Act::kNone},
                             {3, 17, 64, 128, false, true, Act::kRelu},
                             {2, 13, 33, 70, true, true, Act::kGelu},
                             {4, 1, 8, 32, false, true, Act::kSilu},
                             {2, 40, 96, 96, true, false, Act::kNone},
                             {1, 0, 4, 4, false, false, Act::kNone},
                             // past one chunk of the reduction (256) and, in one block, past one packed
                             // group of rows (1020 stretched by up to a quarter on a 2 MB L2); a reduction
                             // tail that is not a multiple of 8 with trans_b; column tiles, single vectors
                             // and scalar tails
                             {2, 1300, 300, 80, true, true, Act::kRelu, true},
                             {2, 7, 520, 83, false, true, Act::kGelu},
                             // a gate's logits: fewer columns than a vector, all dot products
                             {3, 50, 100, 8, true, false, Act::kNone},
                             // few rows (B packed a span of four column tiles at a time) over 17 column tiles
                             {2, 13, 300, 1100, false, true, Act::kRelu, true}};
  for (const auto& c : cases) {
    expect_matches_reference<TypeParam>(c.one_block ? testing::one_thread_context() : Context::global(), c, rng);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

// The CPUs with narrower vectors (SSE's 16 bytes: column tiles of 8 floats; AVX2's 32: 16) pack a
// transposed B in 8 x 8 and 16 x 16 blocks transposed in registers, with reduction tails past the
// last whole block (K = 300 is one chunk of 256 and 44 = 2 x 16 + 12), as AVX-512 does in 16 x 16.
TEST(GemmCpu, NarrowerVectorsPackTransposedPanelsAlike) {
#if !defined(__x86_64__)
  GTEST_SKIP() << "x86-64 CPU names";
#endif
  const FloatCase cases[] = {{2, 37, 300, 70, true, true, Act::kRelu},
                             {1, 20, 45, 40, true, false, Act::kNone},
                             {2, 13, 300, 100, false, true, Act::kGelu}};
  for (const char* cpu : {"x86-64", "x86-64-v3"}) {
    testing::TempDir dir;
    Settings settings;
    settings.cache_dir = dir.path();
    settings.cpu = cpu;
    Context context(settings);
    SCOPED_TRACE(cpu);
    std::mt19937 rng(43);
    for (const auto& c : cases) {
      expect_matches_reference<float>(context, c, rng);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
}

// got [batch, out_rows, n] within `tolerance` (relative, plus as much absolute) of want, except
// rows past a batch's count (grouped rows), which must still hold the -99 they were filled with.
void expect_outputs_near(const std::vector<double>& got, const std::vector<double>& want,
                         const std::vector<int>& counts, int64_t batch, int64_t out_rows, int64_t n, double tolerance) {
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t r = 0; r < out_rows; ++r)
      for (int64_t j = 0; j < n; ++j) {
        const size_t i = static_cast<size_t>((b * out_rows + r) * n + j);
        if (!counts.empty() && r >= counts[static_cast<size_t>(b)])
          ASSERT_EQ(got[i], -99) << "batch " << b << " row " << r << " past its count was written";
        else
          ASSERT_NEAR(got[i], want[i], tolerance * (1 + std::abs(want[i])))
              << "batch " << b << " row " << r << " column " << j;
      }
}

// AArch64's register block (8 rows x 3 vectors of 16 bytes: column tiles of 12 floats or 6
// doubles, which no x86 CPU is given) computed on this host: the kernel chosen for a target with
// 16-byte vectors and 32 registers, launched directly, against the double reference. Row tiles of 8
// with tails, column tiles of 12 with single vectors and scalars past them, a transposed B packed
// in 4 x 4 blocks (12 columns are no whole 8 x 8 block) with a reduction tail, the weight
// gradient, grouped rows, float64 and bfloat16 (converted operands, rounded once).
struct BlockCase {
  DType dtype;
  int64_t batch, rows, k, n;
  bool trans_a, trans_b;
  std::vector<int> counts;  // grouped rows: rows used per batch (empty: all)
};

void expect_block_matches_reference(Context& context, const Target& chosen_for, const BlockCase& c, std::mt19937& rng) {
  using testing::decode_values;
  using testing::encode_values;
  const kernels::GemmShape shape{.dtype = c.dtype,
                                 .n = c.n,
                                 .k = c.k,
                                 .trans_b = c.trans_b,
                                 .bias = !c.trans_a,
                                 .activation = c.trans_a ? kernels::kActNone : kernels::kActGelu,
                                 .trans_a = c.trans_a};
  const KernelSpec spec = kernels::gemm_spec(shape, chosen_for);
  SCOPED_TRACE(spec.to_string());
  ASSERT_EQ(spec.int_param("row_tile"), 8);
  ASSERT_EQ(spec.int_param("tile_vecs"), 3);
  const int64_t out_rows = c.trans_a ? c.k : c.rows, reduce = c.trans_a ? c.rows : c.k;
  std::string a = encode_values(random_vector(rng, c.batch * c.rows * c.k), c.dtype),
              w = encode_values(random_vector(rng, c.batch * reduce * c.n), c.dtype),
              bias = encode_values(random_vector(rng, c.batch * c.n), c.dtype),
              out = encode_values(std::vector<double>(c.batch * out_rows * c.n, -99), c.dtype);
  std::vector<int> counts = c.counts;
  kernels::GemmArgs args{a.data(),
                         w.data(),
                         c.trans_a ? nullptr : bias.data(),
                         nullptr,
                         out.data(),
                         counts.empty() ? nullptr : counts.data(),
                         c.rows * c.k,
                         reduce * c.n,
                         out_rows * c.n,
                         static_cast<int>(c.rows),
                         static_cast<int>(c.batch),
                         nullptr,
                         0};
  const kernels::GemmProblem problem{.batch = c.batch,
                                     .rows = c.rows,
                                     .max_rows = c.rows,
                                     .k = c.k,
                                     .n = c.n,
                                     .parallelism = context.cpu().parallelism()};
  void* params[] = {&args};
  context.cpu().launch(context.kernel(context.cpu(), spec), kernels::gemm_launch_config(spec, problem), params);
  std::vector<double> da = decode_values(a, c.dtype), stored_bias = decode_values(bias, c.dtype);
  if (c.trans_a) da = transposed(da, c.batch, c.rows, c.k);  // the reference's a is A^T
  const auto want = reference::gemm(da, decode_values(w, c.dtype), c.trans_a ? nullptr : &stored_bias, c.batch,
                                    out_rows, reduce, c.n, c.trans_b, c.trans_a ? Act::kNone : Act::kGelu);
  const auto got = decode_values(out, c.dtype);
  const double tolerance = c.dtype == DType::kFloat64 ? 1e-12 : c.dtype == DType::kFloat32 ? 2e-6 * (reduce + 1) : 4e-3;
  expect_outputs_near(got, want, counts, c.batch, out_rows, c.n, tolerance);
}

TEST(GemmCpu, AArch64RegisterBlockComputesOnThisHost) {
  const Target neon_like = Target::cpu(16, 0, kCpu32VectorRegisters);
  const BlockCase cases[] = {
      {DType::kFloat32, 2, 37, 300, 70, false, false, {}}, {DType::kFloat32, 2, 13, 301, 100, false, true, {}},
      {DType::kFloat32, 2, 45, 20, 83, true, false, {}},   {DType::kFloat32, 3, 19, 40, 36, false, false, {19, 0, 5}},
      {DType::kFloat64, 2, 21, 70, 45, false, true, {}},   {DType::kBFloat16, 2, 29, 301, 50, false, false, {}},
      {DType::kBFloat16, 2, 30, 33, 40, true, false, {}}};
  std::mt19937 rng(83);
  for (Context* context : {&Context::global(), &testing::one_thread_context()})
    for (const BlockCase& c : cases) {
      expect_block_matches_reference(*context, neon_like, c, rng);
      if (::testing::Test::HasFatalFailure()) return;
    }
}

TEST(GemmCpu, GroupedRowsAndSwiglu) {
  std::mt19937 rng(3);
  const int64_t batch = 3, rows = 10, k = 16, n = 40;
  auto a = cast<float>(random_vector(rng, batch * rows * k)), w = cast<float>(random_vector(rng, batch * k * n));
  auto gate = cast<float>(random_vector(rng, batch * rows * n));
  std::vector<int> counts = {4, 0, 10};
  std::vector<float> out(batch * rows * n, -99.f);
  Tensor counts_t(counts.data(), DType::kInt32, {batch}), gate_t(gate.data(), DType::kFloat32, {batch, rows, n});
  GemmOptions options;
  options.row_counts = &counts_t;
  options.activation = kernels::kActSwiglu;
  options.aux = &gate_t;
  batched_gemm(Context::global(), Tensor(a.data(), DType::kFloat32, {batch, rows, k}),
               Tensor(w.data(), DType::kFloat32, {batch, k, n}), Tensor(out.data(), DType::kFloat32, {batch, rows, n}),
               options);
  auto plain = reference::gemm(cast<double>(a), cast<double>(w), nullptr, batch, rows, k, n, false, Act::kNone);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < n; ++j) {
        size_t i = (b * rows + r) * n + j;
        if (r >= counts[b]) {
          ASSERT_EQ(out[i], -99.f) << "rows past the count are not touched";
        } else {
          ASSERT_NEAR(out[i], reference::activate(Act::kSilu, gate[i]) * plain[i], 1e-5);
        }
      }
}

// float16 and bfloat16 operands are converted to float as they are packed and their sums kept in
// float across every chunk of the reduction, rounded once: each output is within half a unit in
// the last place of the exact result (plus float's own summation error), which summing or rounding
// in 16 bits chunk by chunk would miss. Forward past one chunk and one capped group of 16-bit rows
// (in one block), the data gradient (trans_b) with a K tail, the weight gradient (trans_a) over
// run-time rows, grouped rows with the SwiGLU epilogue.
struct SixteenBitCase {
  int64_t batch, rows, k, n;
  bool trans_a, trans_b, bias;
  Act act;
  bool one_block;  // the whole batch in one block of the grid
};

// A 16-bit GEMM in `context` (its threads, or one block with `one_block`) against the double
// reference: each output is the exact result rounded once, so within half an ulp (plus the float
// sums' own rounding).
void expect_rounded_once(Context& context, DType dt, const SixteenBitCase& c, std::mt19937& rng) {
  using testing::decode_values;
  using testing::encode_values;
  const kernels::GemmActivation acts[] = {kernels::kActNone, kernels::kActRelu, kernels::kActGelu, kernels::kActSilu};
  const int mantissa = dt == DType::kFloat16 ? 10 : 7;
  auto half_ulp = [&](double v) { return v == 0 ? 0.0 : std::ldexp(1.0, std::ilogb(v) - mantissa - 1); };
  SCOPED_TRACE(std::string(dtype_name(dt)) + " rows " + std::to_string(c.rows) + " k " + std::to_string(c.k) + " n " +
               std::to_string(c.n) +
               (c.trans_a   ? " trans_a"
                : c.trans_b ? " trans_b"
                            : ""));
  // trans_a: a [B, R, K] and w [B, R, N] give c [B, K, N]
  const int64_t out_rows = c.trans_a ? c.k : c.rows, reduce = c.trans_a ? c.rows : c.k;
  const std::string a = encode_values(random_vector(rng, c.batch * c.rows * c.k), dt),
                    w = encode_values(random_vector(rng, c.batch * reduce * c.n), dt),
                    bias = encode_values(random_vector(rng, c.batch * c.n), dt);
  std::string out = encode_values(std::vector<double>(c.batch * out_rows * c.n, -99), dt);
  std::string bias_copy = bias;
  Tensor bias_t(bias_copy.data(), dt, {c.batch, c.n});
  GemmOptions options;
  options.trans_a = c.trans_a;
  options.trans_b = c.trans_b;
  options.bias = c.bias ? &bias_t : nullptr;
  options.activation = acts[static_cast<int>(c.act)];
  std::string a_copy = a, w_copy = w;
  const std::vector<int64_t> w_shape = weight_shape(c.batch, c.rows, c.k, c.n, c.trans_a, c.trans_b);
  batched_gemm(context, Tensor(a_copy.data(), dt, {c.batch, c.rows, c.k}), Tensor(w_copy.data(), dt, w_shape),
               Tensor(out.data(), dt, {c.batch, out_rows, c.n}), options);
  std::vector<double> da = decode_values(a, dt), stored_bias = decode_values(bias, dt);
  if (c.trans_a) da = transposed(da, c.batch, c.rows, c.k);  // the reference's a is A^T
  const auto want = reference::gemm(da, decode_values(w, dt), c.bias ? &stored_bias : nullptr, c.batch, out_rows,
                                    reduce, c.n, c.trans_b, c.act);
  const auto got = decode_values(out, dt);
  for (size_t i = 0; i < want.size(); ++i)
    ASSERT_LE(std::abs(got[i] - want[i]), half_ulp(want[i]) + 1e-5) << "element " << i << ": " << want[i];
}

TEST(GemmCpu, SixteenBitOperandsRoundOnceFromFloatSums) {
  std::mt19937 rng(16);
  const SixteenBitCase cases[] = {{2, 600, 300, 2067, false, false, true, Act::kGelu, true},
                                  {2, 13, 520, 83, false, true, true, Act::kRelu, false},
                                  {2, 10, 300, 700, false, false, true, Act::kGelu, true},  // few rows, 10 column tiles
                                  {2, 300, 70, 40, true, false, false, Act::kNone, false},
                                  {2, 300, 10, 700, true, false, false, Act::kNone, true}};  // few output rows
  for (DType dt : {DType::kFloat16, DType::kBFloat16})
    for (const auto& c : cases) {
      expect_rounded_once(c.one_block ? testing::one_thread_context() : Context::global(), dt, c, rng);
      if (::testing::Test::HasFatalFailure()) return;
    }
}

// bfloat16 with AVX512_BF16's dot products (operands packed in pairs along the reduction) and with
// operands converted to float (the AVX-512 baseline CPU x86-64-v4, which has none) both round
// once from float sums: odd reductions (a pair's partner zero) in the forward, data and weight
// gradient layouts, a chunk tail that is odd (301 = 256 + 45), few rows over many column tiles (B
// packed a span at a time, the next span fetched under the micro-kernels, over whole chunks and
// an odd one), and one block per batch. (Grouped rows with an empty expert run on this
// host's CPU in ManyThreadsShareFewRowsByColumns.)
TEST(GemmCpu, Bfloat16AmxTilesDotProductsAndConvertedOperandsAllRoundOnce) {
  if (!__builtin_cpu_supports("avx512bf16"))
    GTEST_SKIP() << "this CPU has no AVX512_BF16: bfloat16 GEMMs convert their operands (covered above)";
  const SixteenBitCase cases[] = {{2, 37, 301, 200, false, false, true, Act::kGelu, false},
                                  {2, 13, 45, 83, false, true, true, Act::kRelu, false},
                                  {2, 301, 33, 70, true, false, false, Act::kNone, false},
                                  {2, 10, 45, 700, false, false, true, Act::kSilu, true},
                                  {2, 10, 301, 1100, false, false, true, Act::kGelu, true},
                                  {1, 700, 257, 130, false, true, false, Act::kNone, true},
                                  {2, 50, 512, 256, true, false, false, Act::kNone, false}};
  // This host (AMX tiles where it has them; the dot products on AMD's cores, which run them at the
  // FMA's rate; Intel's without AMX convert), AMD's Zen 4 where this host runs it (for its dot
  // products), and x86-64-v4 (AVX-512 with neither: converted operands).
  const unsigned host = host_cpu_features();
  const bool host_amx = (host & kCpuAmxBf16) != 0;
  const bool host_dot = (host & kCpuBf16Dot) != 0 && (host & (kCpuFastBf16Dot | kCpuAmxBf16)) != 0;
  std::vector<std::string> cpus = {"", "x86-64-v4"};
  if (!host_amx) std::cout << "[ note ] this CPU has no usable AMX-BF16: the AMX kernel is compiled, not run\n";
  if (host_amx && resolve_cpu_target(HostCpu::detect(), "znver4").missing_on_host.empty()) cpus.push_back("znver4");
  if (!(host_dot && !host_amx) && cpus.size() == 2)
    std::cout << "[ note ] neither this CPU nor Zen 4 runs the dot-product kernel here: it is compiled, not run\n";
  for (const std::string& cpu : cpus) {
    const bool dot = cpu.empty() ? host_dot : cpu == "znver4", amx = cpu.empty() && host_amx;
    for (unsigned threads : {1u, 2u}) {
      testing::TempDir dir;
      Settings settings;
      settings.cache_dir = dir.path();
      settings.cpu = cpu;
      settings.num_threads = threads;
      Context context(settings);
      kernels::GemmShape shape;
      shape.dtype = DType::kBFloat16;
      shape.n = 64;
      shape.k = 64;
      const KernelSpec spec = kernels::gemm_spec(shape, context.cpu().target());
      EXPECT_EQ(spec.bool_param("bf16_dot"), dot) << cpu;
      EXPECT_EQ(spec.bool_param("amx"), amx) << cpu;
      std::mt19937 rng(17);
      for (const auto& c : cases) {
        if (c.one_block != (threads == 1)) continue;
        SCOPED_TRACE(std::string(amx   ? "AMX tiles"
                                 : dot ? "dot products"
                                       : "converted operands") +
                     ", " + std::to_string(threads) + " threads");
        expect_rounded_once(context, DType::kBFloat16, c, rng);
        if (::testing::Test::HasFatalFailure()) return;
      }
    }
  }
}

// With more threads than a batch's row tiles, blocks share the rows by column ranges too
// (gemm_cpu_split): on 64 threads, few rows per expert (grouped, one expert empty), every pass, a
// float and a bfloat16 accumulator, column tiles, single vectors and a scalar tail (N = 300 is four
// tiles of 64 floats, two vectors and 12 columns). Rows past a count stay untouched.
TEST(GemmCpu, ManyThreadsShareFewRowsByColumns) {
  Settings settings = Settings::from_environment();
  settings.num_threads = 64;
  Context context(settings);
  std::mt19937 rng(64);
  struct Case {
    int64_t batch, rows, k, n;
    bool trans_a, trans_b;
    std::vector<int> counts;
  };
  const Case cases[] = {
      {3, 7, 40, 300, false, false, {7, 0, 5}}, {2, 5, 33, 200, false, true, {}}, {2, 9, 10, 300, true, false, {}}};
  for (DType dt : {DType::kFloat32, DType::kBFloat16}) {
    for (const auto& c : cases) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " rows " + std::to_string(c.rows) + " n " + std::to_string(c.n));
      const int64_t out_rows = c.trans_a ? c.k : c.rows, reduce = c.trans_a ? c.rows : c.k;
      std::string a = testing::encode_values(random_vector(rng, c.batch * c.rows * c.k), dt),
                  w = testing::encode_values(random_vector(rng, c.batch * reduce * c.n), dt),
                  bias = testing::encode_values(random_vector(rng, c.batch * c.n), dt),
                  out = testing::encode_values(std::vector<double>(c.batch * out_rows * c.n, -99), dt);
      std::vector<int> counts = c.counts;
      Tensor bias_t(bias.data(), dt, {c.batch, c.n}), counts_t(counts.data(), DType::kInt32, {c.batch});
      GemmOptions options;
      options.trans_a = c.trans_a;
      options.trans_b = c.trans_b;
      options.bias = c.trans_a ? nullptr : &bias_t;
      options.activation = c.trans_a ? kernels::kActNone : kernels::kActGelu;
      options.row_counts = counts.empty() ? nullptr : &counts_t;
      const std::vector<int64_t> w_shape = weight_shape(c.batch, c.rows, c.k, c.n, c.trans_a, c.trans_b);
      batched_gemm(context, Tensor(a.data(), dt, {c.batch, c.rows, c.k}), Tensor(w.data(), dt, w_shape),
                   Tensor(out.data(), dt, {c.batch, out_rows, c.n}), options);
      std::vector<double> da = testing::decode_values(a, dt), stored_bias = testing::decode_values(bias, dt);
      if (c.trans_a) da = transposed(da, c.batch, c.rows, c.k);  // the reference's a is A^T
      const auto want = reference::gemm(da, testing::decode_values(w, dt), c.trans_a ? nullptr : &stored_bias, c.batch,
                                        out_rows, reduce, c.n, c.trans_b, c.trans_a ? Act::kNone : Act::kGelu);
      const auto got = testing::decode_values(out, dt);
      const double tolerance = dt == DType::kFloat32 ? 1e-5 : 1e-2;
      expect_outputs_near(got, want, counts, c.batch, out_rows, c.n, tolerance);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
}

// `body` on a new thread whose stack is `bytes` (an application thread's, such as musl's 128 KB
// default or a small pool's): the CPU pool's caller runs GEMM blocks itself.
void run_on_stack_of(size_t bytes, const std::function<void()>& body) {
  pthread_attr_t attr;
  ASSERT_EQ(pthread_attr_init(&attr), 0);
  ASSERT_EQ(pthread_attr_setstacksize(&attr, bytes), 0);
  pthread_t thread;
  auto run = [](void* f) -> void* {
    (*static_cast<const std::function<void()>*>(f))();
    return nullptr;
  };
  ASSERT_EQ(pthread_create(&thread, &attr, run, const_cast<std::function<void()>*>(&body)), 0);
  pthread_join(thread, nullptr);
  pthread_attr_destroy(&attr);
}

// Refused its scratch (no memory), the GEMM works in a stack frame of about 30 KB: one row tile
// at a time over short reduction chunks, 16-bit C's sums two column tiles at a time. Run on a 192 KB
// stack, where the frame that held C's float sums for a row tile across N (263 KB for N = 4116 with
// AMX's 16-row tiles) crashed; and, given its scratch, on the same stack (the panels live there
// now). Every pass, a reduction tail (300 = 4 x 64 + 44) and column tails (4116 = 64 tiles of 64,
// a vector and 4 columns; 83 = a tile, a vector and 3).
TEST(GemmCpu, WithoutScratchMemoryOrWithASmallStackResultsAreTheSame) {
  struct Refusal {
    explicit Refusal(bool refused) { refuse_cpu_scratch_for_testing(refused); }
    ~Refusal() { refuse_cpu_scratch_for_testing(false); }
  };
  const SixteenBitCase cases[] = {{2, 37, 300, 4116, false, false, true, Act::kGelu, true},
                                  {1, 13, 300, 83, false, true, true, Act::kRelu, true},
                                  {1, 70, 40, 100, true, false, false, Act::kNone, true}};
  const FloatCase float_cases[] = {{2, 37, 300, 4116, false, true, Act::kGelu, true},
                                   {1, 13, 300, 83, true, true, Act::kRelu, true}};
  for (bool refused : {true, false}) {
    SCOPED_TRACE(refused ? "scratch refused" : "with scratch");
    run_on_stack_of(192 << 10, [&] {
      const Refusal refusal(refused);
      std::mt19937 rng(30);
      for (DType dt : {DType::kBFloat16, DType::kFloat16})
        for (const auto& c : cases) {
          expect_rounded_once(testing::one_thread_context(), dt, c, rng);
          if (::testing::Test::HasFatalFailure()) return;
        }
      for (const auto& c : float_cases) {
        expect_matches_reference<float>(testing::one_thread_context(), c, rng);
        if (::testing::Test::HasFatalFailure()) return;
      }
    });
  }
}

TEST(GemmCpu, BadOperandsAreNamed) {
  std::vector<float> a(2 * 3 * 4), w(2 * 4 * 5), c(2 * 3 * 5);
  auto call = [&](const Tensor& ta, const Tensor& tw, const Tensor& tc) {
    batched_gemm(Context::global(), ta, tw, tc);
  };
  Tensor ta(a.data(), DType::kFloat32, {2, 3, 4}), tw(w.data(), DType::kFloat32, {2, 4, 5}),
      tc(c.data(), DType::kFloat32, {2, 3, 5});
  EXPECT_THROW(call(ta, Tensor(w.data(), DType::kFloat32, {2, 5, 4}), tc), UserError);
  EXPECT_THROW(call(ta, tw, Tensor(c.data(), DType::kFloat64, {2, 3, 5})), UserError);
  EXPECT_THROW(call(Tensor(a.data(), DType::kFloat32, {6, 4}), tw, tc), UserError);
  try {
    call(ta, tw, Tensor(c.data(), DType::kFloat32, {2, 3, 6}));
  } catch (const UserError& e) {
    EXPECT_NE(
        std::string(e.what()).find("gemm output is float32[2, 3, 6] on cpu; expected contiguous float32[2, 3, 5]"),
        std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace switchyard
