// Each backward kernel against the reference backward (tests/reference/backward_reference.h),
// and the reference itself against central finite differences of the reference forward.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "core/error.h"
#include "runtime/dispatch_ops.h"
#include "runtime/elementwise_ops.h"
#include "runtime/gating_ops.h"
#include "runtime/gemm_ops.h"
#include "tests/reference/backward_reference.h"
#include "tests/support/test_support.h"

namespace switchyard {
namespace {

using reference::Act;

template <typename T>
DType dtype_of() {
  return std::is_same_v<T, double> ? DType::kFloat64 : DType::kFloat32;
}

template <typename T>
std::vector<double> wide(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}

template <typename T>
class BackwardKernelTest : public ::testing::Test {};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(BackwardKernelTest, Types);

TYPED_TEST(BackwardKernelTest, WeightGradientGemmMatchesReference) {
  using T = TypeParam;
  const DType dt = dtype_of<T>();
  const double eps = std::is_same_v<T, double> ? 1e-12 : 1e-5;  // sums of <= 300 products of |x| < 4
  std::mt19937 rng(8);
  struct Case {
    int64_t batch, rows, k, n;
    bool grouped;
    bool one_block = false;  // the whole batch in one block of the grid
  };
  for (const Case c : {Case{1, 7, 5, 3, false}, Case{3, 300, 13, 70, true}, Case{2, 33, 64, 128, false},
                       Case{4, 0, 6, 8, false}, Case{2, 9, 1, 40, true},
                       // in one block, more output rows (K) than one packed group of A holds (1020
                       // floats, 510 doubles on a 2 MB L2, stretched by up to a quarter); N = one
                       // vector + a scalar tail
                       Case{2, 20, 1400, 24, true, true}}) {
    SCOPED_TRACE(std::to_string(c.rows) + " rows, k " + std::to_string(c.k) + ", n " + std::to_string(c.n));
    auto a = testing::random_normal<T>(rng, c.batch * c.rows * c.k);
    auto g = testing::random_normal<T>(rng, c.batch * c.rows * c.n);
    std::vector<int> counts;
    for (int64_t b = 0; b < c.batch; ++b) counts.push_back(static_cast<int>((b * 7 + 3) % (c.rows + 1)));
    Tensor counts_t(counts.data(), DType::kInt32, {c.batch});
    std::vector<T> out(c.batch * c.k * c.n, T(-99));
    GemmOptions o;
    o.trans_a = true;
    o.row_counts = c.grouped ? &counts_t : nullptr;
    batched_gemm(c.one_block ? testing::one_thread_context() : Context::global(),
                 Tensor(a.data(), dt, {c.batch, c.rows, c.k}), Tensor(g.data(), dt, {c.batch, c.rows, c.n}),
                 Tensor(out.data(), dt, {c.batch, c.k, c.n}), o);
    auto want = reference::weight_grad(wide(a), wide(g), c.batch, c.rows, c.k, c.n, c.grouped ? &counts : nullptr);
    for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(out[i], want[i], eps * (1 + std::abs(want[i]))) << i;
  }
}

TYPED_TEST(BackwardKernelTest, GradientEpiloguesMultiplyByTheDerivative) {
  using T = TypeParam;
  const DType dt = dtype_of<T>();
  std::mt19937 rng(4);
  const int64_t batch = 2, rows = 11, k = 20, n = 36;
  auto a = testing::random_normal<T>(rng, batch * rows * k), w = testing::random_normal<T>(rng, batch * n * k);
  auto pre = testing::random_normal<T>(rng, batch * rows * n);
  Tensor pre_t(pre.data(), dt, {batch, rows, n});
  const std::pair<kernels::GemmActivation, Act> acts[] = {
      {kernels::kActReluGrad, Act::kRelu}, {kernels::kActGeluGrad, Act::kGelu}, {kernels::kActSiluGrad, Act::kSilu}};
  auto plain = reference::gemm(wide(a), wide(w), nullptr, batch, rows, k, n, true, Act::kNone);
  for (const auto& [epilogue, act] : acts) {
    std::vector<T> out(batch * rows * n);
    GemmOptions o;
    o.trans_b = true;  // the data gradient reads W as stored: A W^T
    o.activation = epilogue;
    o.aux = &pre_t;
    batched_gemm(Context::global(), Tensor(a.data(), dt, {batch, rows, k}), Tensor(w.data(), dt, {batch, n, k}),
                 Tensor(out.data(), dt, {batch, rows, n}), o);
    for (size_t i = 0; i < out.size(); ++i) {
      const double want = plain[i] * reference::activate_grad(act, pre[i]);
      ASSERT_NEAR(out[i], want, (std::is_same_v<T, double> ? 1e-12 : 2e-5) * (1 + std::abs(want))) << i;
    }
  }
}

TEST(BackwardReference, ActivationDerivativesMatchFiniteDifferences) {
  for (Act act : {Act::kRelu, Act::kGelu, Act::kSilu}) {
    for (double x : {-3.0, -0.7, -0.01, 0.02, 0.5, 2.5}) {
      const double h = 1e-6;
      const double fd = (reference::activate(act, x + h) - reference::activate(act, x - h)) / (2 * h);
      EXPECT_NEAR(reference::activate_grad(act, x), fd, 1e-8) << static_cast<int>(act) << " at " << x;
    }
  }
}

TYPED_TEST(BackwardKernelTest, GateGradDotsKeptChoices) {
  using T = TypeParam;
  const DType dt = dtype_of<T>();
  std::mt19937 rng(21);
  for (int trial = 0; trial < 12; ++trial) {
    const int64_t s = 3 + trial * 5, m = trial % 2 ? 24 : 7, e = 2 + trial % 5, k = 1 + trial % std::min<int64_t>(e, 3);
    auto r = reference::random_routing(rng, s, m, e, k, trial % 3 == 0 ? 0.2 : 0.0);
    r.capacity = std::max<int64_t>(0, (s * k) / e - trial % 3);  // some choices dropped
    auto slots = testing::random_normal<T>(rng, e * r.capacity * m), other = testing::random_normal<T>(rng, s * m);
    std::vector<T> gates(r.gates.begin(), r.gates.end()), out(k * s, T(-9));
    Routing routing{Tensor(r.indices.data(), DType::kInt32, {k, s}), Tensor(r.locations.data(), DType::kInt32, {k, s}),
                    Tensor(gates.data(), dt, {k, s}), r.capacity, e};
    dispatch_gate_grad(Context::global(), Tensor(slots.data(), dt, {e, r.capacity, m}),
                       Tensor(other.data(), dt, {s, m}), routing, Tensor(out.data(), dt, {k, s}));
    auto want = reference::gate_grad(r, wide(slots), wide(other));
    for (size_t i = 0; i < want.size(); ++i)
      ASSERT_NEAR(out[i], want[i], (std::is_same_v<T, double> ? 1e-12 : 1e-5) * (1 + std::abs(want[i]))) << i;
  }
}

// The gates and scores route() computes from logits, dotted with fixed weights: a scalar whose
// logits-gradient is what gate_backward returns.
double gate_objective(const std::vector<double>& logits, int64_t s, int64_t e, int64_t k, bool normalize,
                      const std::vector<double>& dg, const std::vector<double>& aux) {
  auto r = reference::route(logits, s, e, k, 1.0, normalize, false, 1);
  double v = 0;
  for (size_t i = 0; i < dg.size(); ++i) v += dg[i] * r.gates[i];
  for (int64_t t = 0; t < s; ++t)
    for (int64_t x = 0; x < e; ++x) v += aux[x] * r.scores[t * e + x];
  return v;
}

TYPED_TEST(BackwardKernelTest, GateBackwardMatchesReferenceAndFiniteDifferences) {
  using T = TypeParam;
  const DType dt = dtype_of<T>();
  std::mt19937 rng(6);
  for (int trial = 0; trial < 8; ++trial) {
    const int64_t s = 5 + trial, e = 3 + trial % 4, k = 1 + trial % 3;
    const bool normalize = trial % 4 != 3;
    SCOPED_TRACE("trial " + std::to_string(trial));
    auto logits = testing::random_normal<double>(rng, s * e);
    auto dg = testing::random_normal<double>(rng, k * s);
    auto routed = reference::route(logits, s, e, k, 1.0, normalize, false, 1);
    // gshard_loss weighted by w: dL/dscores[t, x] = w * E * (tokens whose first choice is x) / S^2.
    const double weight = 0.5 + 0.25 * trial;
    std::vector<double> aux(static_cast<size_t>(e), 0.0);
    for (int64_t t = 0; t < s; ++t)
      aux[static_cast<size_t>(routed.indices[t])] += weight * static_cast<double>(e) / static_cast<double>(s * s);
    auto want = reference::gate_backward(routed.scores, routed.indices, dg, aux, s, e, k, normalize);
    // The reference against finite differences of route() (fp64, exact to ~1e-9).
    for (size_t i = 0; i < logits.size(); i += 3) {
      auto plus = logits, minus = logits;
      plus[i] += 1e-6;
      minus[i] -= 1e-6;
      const double fd =
          (gate_objective(plus, s, e, k, normalize, dg, aux) - gate_objective(minus, s, e, k, normalize, dg, aux)) /
          2e-6;
      ASSERT_NEAR(want[i], fd, 1e-7 * (1 + std::abs(fd))) << "reference at " << i;
    }
    // The kernel, from the kernel-side forward's scores and indices.
    std::vector<T> tl(logits.begin(), logits.end());
    RoutedTokens fwd = route_tokens(Context::global(), Tensor(tl.data(), dt, {s, e}), k, normalize, false);
    std::vector<T> tdg(dg.begin(), dg.end()), out(s * e);
    gate_backward(Context::global(), fwd, Tensor(tdg.data(), dt, {k, s}), weight, normalize,
                  Tensor(out.data(), dt, {s, e}));
    for (size_t i = 0; i < want.size(); ++i)
      ASSERT_NEAR(out[i], want[i], (std::is_same_v<T, double> ? 1e-12 : 1e-5) * (1 + std::abs(want[i]))) << i;
  }
}

TYPED_TEST(BackwardKernelTest, ElementwiseOps) {
  using T = TypeParam;
  const DType dt = dtype_of<T>();
  const double eps = std::is_same_v<T, double> ? 1e-13 : 1e-5;
  std::mt19937 rng(17);
  const int64_t batch = 3, rows = 50, cols = 37;
  auto x = testing::random_normal<T>(rng, batch * rows * cols), y = testing::random_normal<T>(rng, x.size()),
       z = testing::random_normal<T>(rng, x.size());
  const std::vector<int64_t> shape{batch, rows, cols};
  std::vector<T> out(x.size()), out2(x.size());
  swiglu_backward(Context::global(), Tensor(x.data(), dt, shape), Tensor(y.data(), dt, shape),
                  Tensor(z.data(), dt, shape), Tensor(out.data(), dt, shape), Tensor(out2.data(), dt, shape));
  for (size_t i = 0; i < x.size(); ++i) {
    const double silu = reference::activate(Act::kSilu, x[i]);
    ASSERT_NEAR(out[i], z[i] * y[i] * reference::activate_grad(Act::kSilu, x[i]), eps * 10) << i;
    ASSERT_NEAR(out2[i], z[i] * silu, eps * 10) << i;
  }
  swiglu(Context::global(), Tensor(x.data(), dt, shape), Tensor(y.data(), dt, shape), Tensor(out.data(), dt, shape));
  for (size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(out[i], reference::activate(Act::kSilu, x[i]) * y[i], eps * 10);
  activate(Context::global(), Tensor(x.data(), dt, shape), kernels::kActGelu, Tensor(out.data(), dt, shape));
  for (size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(out[i], reference::activate(Act::kGelu, x[i]), eps * 10);
  const std::vector<T> before = x;
  add(Context::global(), Tensor(x.data(), dt, shape), Tensor(y.data(), dt, shape), Tensor(x.data(), dt, shape));
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(x[i], static_cast<T>(before[i] + y[i])) << "in place";
  std::vector<int> counts{50, 0, 17};
  Tensor counts_t(counts.data(), DType::kInt32, {batch});
  std::vector<T> sums(batch * cols, T(-1));
  sum_rows(Context::global(), Tensor(y.data(), dt, shape), Tensor(sums.data(), dt, {batch, cols}), &counts_t);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t c = 0; c < cols; ++c) {
      double want = 0;
      for (int r = 0; r < counts[b]; ++r) want += y[(b * rows + r) * cols + c];
      ASSERT_NEAR(sums[b * cols + c], want, eps * 50) << b << "," << c;
    }
  EXPECT_THROW(
      activate(Context::global(), Tensor(x.data(), dt, shape), kernels::kActSwiglu, Tensor(out.data(), dt, shape)),
      UserError);
  EXPECT_THROW(sum_rows(Context::global(), Tensor(y.data(), dt, shape), Tensor(sums.data(), dt, {batch, cols + 1})),
               UserError);
  counts[1] = static_cast<int>(rows) + 5;  // a count past the rows (a layer's true count above C) is clamped
  sum_rows(Context::global(), Tensor(y.data(), dt, shape), Tensor(sums.data(), dt, {batch, cols}), &counts_t);
  for (int64_t c = 0; c < cols; ++c) {
    double want = 0;
    for (int64_t r = 0; r < rows; ++r) want += y[(rows + r) * cols + c];
    ASSERT_NEAR(sums[cols + c], want, eps * 50) << "clamped count, column " << c;
  }
  counts[1] = -1;
  EXPECT_THROW(
      sum_rows(Context::global(), Tensor(y.data(), dt, shape), Tensor(sums.data(), dt, {batch, cols}), &counts_t),
      UserError);
  SgdOptions bad;
  bad.momentum = 0.9;
  EXPECT_THROW(sgd_step(Context::global(), Tensor(x.data(), dt, shape), Tensor(y.data(), dt, shape), nullptr, bad),
               UserError);
  bad.momentum = 0;
  bad.lr = NAN;
  EXPECT_THROW(sgd_step(Context::global(), Tensor(x.data(), dt, shape), Tensor(y.data(), dt, shape), nullptr, bad),
               UserError);
}

// scale and transpose over shapes that split into several CPU blocks (a partial strip of rows
// at each block's edge), against plain index arithmetic.
TYPED_TEST(BackwardKernelTest, ScaleAndTransposeCoverEveryElement) {
  using T = TypeParam;
  const DType dt = dtype_of<T>();
  std::mt19937 rng(5);
  const int64_t batch = 3, rows = 97, cols = 131;
  auto x = testing::random_normal<T>(rng, batch * rows * cols);
  std::vector<T> out(x.size(), T(-7));
  transpose(Context::global(), Tensor(x.data(), dt, {batch, rows, cols}), Tensor(out.data(), dt, {batch, cols, rows}));
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c)
        ASSERT_EQ(out[(b * cols + c) * rows + r], x[(b * rows + r) * cols + c]) << b << "," << r << "," << c;
  std::vector<T> matrix_t(static_cast<size_t>(rows * cols));
  transpose(Context::global(), Tensor(x.data(), dt, {rows, cols}), Tensor(matrix_t.data(), dt, {cols, rows}));
  EXPECT_EQ(matrix_t[5 * rows + 3], x[3 * cols + 5]) << "a 2-D input is one matrix";
  const std::vector<T> before = x;
  scale(Context::global(), Tensor(x.data(), dt, {batch * rows * cols}), 0.25,
        Tensor(x.data(), dt, {batch * rows * cols}));
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(x[i], static_cast<T>(before[i] * T(0.25))) << "in place, " << i;

  const Tensor in(x.data(), dt, {batch, rows, cols});
  EXPECT_THROW(transpose(Context::global(), in, Tensor(out.data(), dt, {batch, rows, cols})), UserError)
      << "the output must be [B, C, R]";
  EXPECT_THROW(transpose(Context::global(), in, Tensor(x.data(), dt, {batch, cols, rows})), UserError)
      << "not in place";
  const auto n = static_cast<int64_t>(x.size());
  EXPECT_THROW(transpose(Context::global(), Tensor(x.data(), dt, {n}), Tensor(out.data(), dt, {n})), UserError);
  EXPECT_THROW(scale(Context::global(), in, INFINITY, in), UserError);
  EXPECT_THROW(scale(Context::global(), in, 2.0, Tensor(out.data(), dt, {batch, cols, rows})), UserError);
}

// Device::copy_2d on the CPU: rows from one pitch to another, the gaps left as they were.
// The padded, grouped transpose (what the TF32 weight gradient reads on Hopper): entries past a
// batch's used rows, and past its rows, are zeros; counts and shapes are checked.
TYPED_TEST(BackwardKernelTest, TransposePadsAndZeroesRowsPastTheCounts) {
  using T = TypeParam;
  const DType dt = dtype_of<T>();
  std::mt19937 rng(6);
  const int64_t batch = 3, rows = 37, cols = 70, padded = 40;
  const auto x = testing::random_normal<T>(rng, batch * rows * cols);
  std::vector<int32_t> counts = {0, 20, 99};  // an empty batch, a short one, one past the rows
  const Tensor host_counts(counts.data(), DType::kInt32, {batch});
  std::vector<T> out(static_cast<size_t>(batch * cols * padded), T(-7));
  const Tensor in(const_cast<T*>(x.data()), dt, {batch, rows, cols});
  transpose(Context::global(), in, Tensor(out.data(), dt, {batch, cols, padded}), &host_counts);
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t used = std::min<int64_t>(counts[b], rows);
    for (int64_t c = 0; c < cols; ++c)
      for (int64_t r = 0; r < padded; ++r)
        ASSERT_EQ(out[(b * cols + c) * padded + r], r < used ? x[(b * rows + r) * cols + c] : T(0))
            << b << "," << c << "," << r;
  }
  EXPECT_THROW(transpose(Context::global(), in, Tensor(out.data(), dt, {batch, cols, rows - 1})), UserError)
      << "rows shorter than x's";
  const Tensor two_counts(counts.data(), DType::kInt32, {2});
  EXPECT_THROW(transpose(Context::global(), in, Tensor(out.data(), dt, {batch, cols, padded}), &two_counts), UserError)
      << "a count per batch";
  counts[1] = -1;
  EXPECT_THROW(transpose(Context::global(), in, Tensor(out.data(), dt, {batch, cols, padded}), &host_counts), UserError)
      << "a negative count";
}

TEST(CpuDevice, Copy2dMovesRowsBetweenPitches) {
  Device& cpu = Context::global().cpu();
  for (size_t rows : {3, 5000}) {  // serial, and split across the pool
    const size_t width = 96, src_pitch = 160, dst_pitch = 128;
    std::vector<unsigned char> src(rows * src_pitch), dst(rows * dst_pitch, 0xAB);
    for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<unsigned char>(i * 7 + i / 251);
    cpu.copy_2d(dst.data(), dst_pitch, src.data(), src_pitch, width, rows);
    for (size_t r = 0; r < rows; ++r)
      for (size_t b = 0; b < dst_pitch; ++b)
        ASSERT_EQ(dst[r * dst_pitch + b], b < width ? src[r * src_pitch + b] : 0xAB) << "row " << r << " byte " << b;
  }
  std::vector<char> a(64), b(64);
  EXPECT_THROW(cpu.copy_2d(a.data(), 8, b.data(), 16, 12, 2), UserError) << "a pitch below the width";
}

}  // namespace
}  // namespace switchyard
