// Batched GEMM cases for the CUDA templates run on the host (the SIMT and Hopper GEMMs): random
// operands in the storage type, C poisoned, the kernel's arguments over them, and the check of C
// against the double reference (tests/reference), including that rows past a grouped count keep
// their poison and that NaN past a count in a weight gradient's operands does not count.
#pragma once

#include <switchyard/common/gemm_args.h>

#include <cstdint>
#include <string>
#include <vector>

#include "jit/dtype.h"
#include "jit/kernels/gemm.h"

namespace switchyard::testing {

struct GemmCase {
  DType dtype = DType::kFloat32;
  int64_t batch = 1;
  int64_t rows = 0;
  int64_t k = 0;
  int64_t n = 0;
  bool trans_b = false;
  bool bias = false;
  int activation = kernels::kActNone;  // kernels::GemmActivation
  bool grouped = false;                // per-batch counts, one of them 0 and one short of a tile
  bool trans_a = false;                // the weight gradient C [K, N] = A^T B over the rows
  std::vector<int> counts = {};        // grouped: these per-batch counts instead of the formula's
  bool tf32 = false;                   // float32 allowed on tensor cores in TF32 (checked with its tolerance)
};

/// A case's buffers: A, B, bias and aux random in [-1, 1) (a weight gradient's rows past the
/// counts all NaN), C filled with 7.
struct GemmBuffers {
  std::string a, b, bias, aux, c;
  std::vector<int> counts;  // rows used per batch (rows everywhere unless grouped)
};
GemmBuffers gemm_buffers(const GemmCase& gemm, unsigned seed);

/// The kernel arguments of `gemm` over `buffers` (C written in place).
kernels::GemmArgs gemm_args(const GemmCase& gemm, GemmBuffers& buffers);

/// Checks C against the double reference with the storage type's tolerance (gtest failures).
void expect_gemm_output(const GemmCase& gemm, const GemmBuffers& buffers);

/// The GEMM shape the family rules choose a kernel for (`aligned_16`: 16-byte aligned operands).
kernels::GemmShape gemm_shape(const GemmCase& gemm, bool aligned_16);

/// The case in words, for SCOPED_TRACE.
std::string describe(const GemmCase& gemm);

}  // namespace switchyard::testing
