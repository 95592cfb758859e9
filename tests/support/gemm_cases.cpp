#include "tests/support/gemm_cases.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <sstream>

#include "tests/reference/backward_reference.h"
#include "tests/reference/layer_reference.h"
#include "tests/reference/moe_reference.h"
#include "tests/support/dtype_values.h"
#include "tests/support/random_values.h"

namespace switchyard::testing {
namespace {

constexpr double kPoison = 7.0;

// The tolerance of a value rounded to `dt` after float sums of short reductions; TF32 products
// (operands cut to 10 mantissa bits) err like float16's.
double tolerance(DType dt, bool tf32) {
  if (tf32) return 5e-3;
  return dt == DType::kFloat32 ? 1e-5 : dt == DType::kFloat16 ? 2e-3 : 1e-2;
}

// The epilogue's factor from the aux input: SwiGLU's silu(aux), or an activation's derivative
// at aux (the backward epilogues).
double aux_factor(int activation, double aux) {
  switch (activation) {
    case kernels::kActSwiglu:
      return reference::activate(reference::Act::kSilu, aux);
    case kernels::kActReluGrad:
      return reference::activate_grad(reference::Act::kRelu, aux);
    case kernels::kActGeluGrad:
      return reference::activate_grad(reference::Act::kGelu, aux);
    case kernels::kActSiluGrad:
      return reference::activate_grad(reference::Act::kSilu, aux);
    default:
      ADD_FAILURE() << "activation " << activation << " takes no aux";
      return 0;
  }
}

std::vector<double> expected_forward(const GemmCase& g, const GemmBuffers& buffers) {
  const auto bias = decode_values(buffers.bias, g.dtype), aux = decode_values(buffers.aux, g.dtype);
  auto want = reference::gemm(decode_values(buffers.a, g.dtype), decode_values(buffers.b, g.dtype),
                              g.bias ? &bias : nullptr, g.batch, g.rows, g.k, g.n, g.trans_b,
                              reference::reference_act(kernels::GemmActivation(g.activation)));
  if (kernels::gemm_uses_aux(g.activation))
    for (size_t i = 0; i < want.size(); ++i) want[i] *= aux_factor(g.activation, aux[i]);
  return want;
}

}  // namespace

GemmBuffers gemm_buffers(const GemmCase& g, unsigned seed) {
  std::mt19937 rng(seed);
  GemmBuffers buffers;
  buffers.counts.assign(g.batch, static_cast<int>(g.rows));
  if (g.grouped && !g.counts.empty()) {
    EXPECT_EQ(g.counts.size(), static_cast<size_t>(g.batch)) << "a count per batch";
    buffers.counts = g.counts;
  } else if (g.grouped) {
    for (int64_t b = 0; b < g.batch; ++b)
      buffers.counts[b] = b == 1 ? 0 : static_cast<int>((b * 97 + 13) % (g.rows + 1));
  }
  const int64_t b_values = g.batch * (g.trans_a ? g.rows : g.k) * g.n;
  std::vector<double> a = uniform_values(rng, g.batch * g.rows * g.k), b = uniform_values(rng, b_values);
  if (g.trans_a)  // rows past a count must not reach the sums: NaN would show anywhere
    for (int64_t bi = 0; bi < g.batch; ++bi)
      for (int64_t r = buffers.counts[bi]; r < g.rows; ++r) {
        std::fill_n(a.begin() + (bi * g.rows + r) * g.k, g.k, NAN);
        std::fill_n(b.begin() + (bi * g.rows + r) * g.n, g.n, NAN);
      }
  buffers.a = encode_values(a, g.dtype);
  buffers.b = encode_values(b, g.dtype);
  buffers.bias = encode_values(uniform_values(rng, g.batch * g.n), g.dtype);
  buffers.aux = encode_values(uniform_values(rng, g.batch * g.rows * g.n), g.dtype);
  buffers.c = encode_values(std::vector<double>(g.batch * (g.trans_a ? g.k : g.rows) * g.n, kPoison), g.dtype);
  return buffers;
}

kernels::GemmArgs gemm_args(const GemmCase& g, GemmBuffers& buffers) {
  return kernels::GemmArgs{buffers.a.data(),
                           buffers.b.data(),
                           g.bias ? buffers.bias.data() : nullptr,
                           kernels::gemm_uses_aux(g.activation) ? buffers.aux.data() : nullptr,
                           buffers.c.data(),
                           g.grouped ? buffers.counts.data() : nullptr,
                           g.rows * g.k,
                           (g.trans_a ? g.rows : g.k) * g.n,
                           (g.trans_a ? g.k : g.rows) * g.n,
                           static_cast<int>(g.rows),
                           static_cast<int>(g.batch),
                           nullptr,
                           0};
}

void expect_gemm_output(const GemmCase& g, const GemmBuffers& buffers) {
  const std::vector<double> want =
      g.trans_a ? reference::weight_grad(decode_values(buffers.a, g.dtype), decode_values(buffers.b, g.dtype), g.batch,
                                         g.rows, g.k, g.n, &buffers.counts)
                : expected_forward(g, buffers);
  const std::vector<double> got = decode_values(buffers.c, g.dtype);
  const int64_t out_rows = g.trans_a ? g.k : g.rows;
  for (int64_t b = 0; b < g.batch; ++b)
    for (int64_t r = 0; r < out_rows; ++r)
      for (int64_t j = 0; j < g.n; ++j) {
        const size_t i = (b * out_rows + r) * g.n + j;
        if (!g.trans_a && r >= buffers.counts[b])
          ASSERT_EQ(got[i], kPoison) << "batch " << b << " row " << r << " (count " << buffers.counts[b]
                                     << ") was written";
        else
          ASSERT_NEAR(got[i], want[i], tolerance(g.dtype, g.tf32) * (1 + std::abs(want[i])))
              << "batch " << b << " row " << r << " col " << j;
      }
}

kernels::GemmShape gemm_shape(const GemmCase& g, bool aligned_16) {
  return {.dtype = g.dtype,
          .n = g.n,
          .k = g.k,
          .trans_b = g.trans_b,
          .bias = g.bias,
          .activation = kernels::GemmActivation(g.activation),
          .allow_tf32 = g.tf32,
          .trans_a = g.trans_a,
          .aligned_16 = aligned_16,
          .grouped = g.grouped};
}

std::string describe(const GemmCase& g) {
  std::ostringstream out;
  out << dtype_name(g.dtype) << " " << g.batch << "x" << g.rows << "x" << g.k << "x" << g.n
      << (g.trans_a ? " weight gradient" : "") << (g.trans_b ? " trans_b" : "") << (g.bias ? " bias" : "") << " act "
      << g.activation << (g.grouped ? " grouped" : "") << (g.tf32 ? " tf32" : "");
  return out.str();
}

}  // namespace switchyard::testing
