// Where a kernel runs: the host CPU, or a CUDA architecture such as sm_90 (no device needed).
#pragma once

#include <string>

namespace switchyard {

struct Target {
  enum class Kind { kCpu, kCuda };
  Kind kind = Kind::kCpu;
  int sm = 0;                  // compute capability as 10*major+minor, e.g. 90
  bool arch_specific = false;  // the "a" suffix: sm_90a
  // CPU: the widest vectors (bytes) of the CPU the JIT compiles for, which kernel families size
  // their specs by; 0 = this host's. A choice hint, not identity: specs name what they use.
  int vector_bytes = 0;
  // CPU: the L2 bytes per core of the CPU the JIT compiles for, which the GEMM family sizes its
  // packed blocks by; 0 = this host's (host_l2_bytes). A choice hint like vector_bytes.
  long l2_bytes = 0;
  // CPU: whether the CPU the JIT compiles for has AVX512_BF16's dot products (vdpbf16ps), which the
  // GEMM family multiplies bfloat16 with; with vector_bytes 0, this host's. A choice hint too.
  bool bf16_dot = false;

  static Target cpu(int vector_bytes = 0, long l2_bytes = 0, bool bf16_dot = false) {
    return Target{Kind::kCpu, 0, false, vector_bytes, l2_bytes, bf16_dot};
  }
  static Target cuda(int sm, bool arch_specific = false) { return Target{Kind::kCuda, sm, arch_specific, 0}; }
  /// Parses "cpu", "sm_80", "sm_90a"; throws UserError naming the text otherwise.
  static Target parse(const std::string& text);

  /// Whether code compiled for this target runs on a device whose target is `device`: CPU code
  /// on the CPU; a CUDA CUBIN on a device of its compute capability, where an sm_XXa CUBIN
  /// (arch-specific instructions such as wgmma) needs a device that reports sm_XXa, and a plain
  /// sm_XX one runs on both.
  bool runs_on(const Target& device) const;

  bool is_cpu() const { return kind == Kind::kCpu; }
  bool is_cuda() const { return kind == Kind::kCuda; }
  /// "cpu" or "sm_XX[a]".
  std::string to_string() const;
  bool operator==(const Target& other) const {
    return kind == other.kind && sm == other.sm && arch_specific == other.arch_specific;
  }
};

/// This host's L2 cache per core in bytes, or 1 MB where the C library cannot say.
long host_l2_bytes();

}  // namespace switchyard
