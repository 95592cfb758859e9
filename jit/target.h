// Where a kernel runs: the host CPU, or a CUDA architecture such as sm_90 (no device needed).
#pragma once

#include <string>
#include <vector>

namespace switchyard {

/// CPU features that kernel families choose their specs by: bits of Target::cpu_features.
enum CpuFeature : unsigned {
  kCpuBf16Dot = 1u << 0,            // AVX512_BF16's bfloat16 dot products (vdpbf16ps; LLVM's +avx512bf16)
  kCpu32VectorRegisters = 1u << 1,  // 32 vector registers: AVX-512 (+avx512f) and AArch64 (every core)
  kCpuAmxBf16 = 1u << 2,            // AMX's bfloat16 tiles (tdpbf16ps; LLVM's +amx-tile and +amx-bf16), usable
  // vdpbf16ps at the FMA's instruction rate, twice its products: AMD's cores (Zen 4 and later;
  // LLVM's +avx512bf16 with AMD's +sse4a). Intel's run it at half the FMA's flops, below float FMAs
  // on converted operands (122-127 against 257-264 GFLOP/s on a Sapphire Rapids class VM).
  kCpuFastBf16Dot = 1u << 3,
};

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
  // CPU: the CpuFeature bits of the CPU the JIT compiles for (cpu_features_of its LLVM feature
  // list), which kernel families choose instructions by; with vector_bytes 0, this host's. A
  // choice hint too.
  unsigned cpu_features = 0;

  static Target cpu(int vector_bytes = 0, long l2_bytes = 0, unsigned cpu_features = 0) {
    return Target{Kind::kCpu, 0, false, vector_bytes, l2_bytes, cpu_features};
  }
  static Target cuda(int sm, bool arch_specific = false) { return Target{Kind::kCuda, sm, arch_specific, 0}; }
  /// Parses "cpu", "sm_80", "sm_90a"; throws UserError naming the text otherwise.
  static Target parse(const std::string& text);

  /// Whether code compiled for this target runs on a device whose target is `device`: CPU code
  /// on the CPU; a CUDA CUBIN on a device of its compute capability, where an sm_XXa CUBIN
  /// (arch-specific instructions such as wgmma) needs a device that reports sm_XXa, and a plain
  /// sm_XX one runs on both.
  bool runs_on(const Target& device) const;

  /// CPU: the widest vectors, L2 bytes per core and whether `feature` is there, of the CPU
  /// compiled for, or of this host for a target that does not say (vector_bytes 0).
  int cpu_vector_bytes() const;
  long cpu_l2_bytes() const;
  bool has(CpuFeature feature) const;

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
/// This host's widest vector registers in bytes: 64 with AVX-512, 32 with AVX, else 16 (the rule
/// of CpuTarget::vector_bytes, without LLVM).
int host_vector_bytes();
/// This host's CpuFeature bits.
unsigned host_cpu_features();
/// The CpuFeature bits of a CPU of LLVM triple `triple` ("x86_64-...", "aarch64-...") with the LLVM
/// feature list `llvm_features` ("+avx2", "+avx512bf16", ...).
unsigned cpu_features_of(const std::string& triple, const std::vector<std::string>& llvm_features);

}  // namespace switchyard
