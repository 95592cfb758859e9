// oneDNN's batched matmul primitive on bfloat16 operands (float sums, bfloat16 output): the
// baseline of moe_bench's bfloat16 GEMMs, where oneDNN's sgemm would compare bfloat16 work with
// float32 work. Built only with oneDNN (SY_BENCH_ONEDNN); a benchmark baseline, never a dependency.
#pragma once

#include <cstdint>
#include <memory>

namespace switchyard::bench {

/// C [batch, m, n] = op(A) op(B) over k in bfloat16, every matrix row-major in its batch: A is
/// [batch, m, k] ([batch, k, m] with trans_a), B is [batch, k, n] ([batch, n, k] with trans_b).
class OnednnBf16Matmul {
 public:
  /// Null where oneDNN has no bfloat16 matmul for this CPU (oneDNN 2's need AVX-512);
  /// any other failure throws.
  static std::unique_ptr<OnednnBf16Matmul> create(int64_t batch, int64_t m, int64_t n, int64_t k, bool trans_a,
                                                  bool trans_b);
  ~OnednnBf16Matmul();
  OnednnBf16Matmul(const OnednnBf16Matmul&) = delete;
  OnednnBf16Matmul& operator=(const OnednnBf16Matmul&) = delete;

  /// Runs the product on the operands' 16-bit storage and waits for it.
  void run(const void* a, const void* b, void* c) const;
  /// oneDNN's name for the implementation it chose (e.g. "brg:avx512_core_bf16").
  const char* implementation() const;

 private:
  struct State;
  explicit OnednnBf16Matmul(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace switchyard::bench
