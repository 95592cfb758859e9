// Where a kernel runs: the host CPU, or a CUDA architecture such as sm_90 (no device needed).
#pragma once

#include <string>

namespace switchyard {

struct Target {
  enum class Kind { kCpu, kCuda };
  Kind kind = Kind::kCpu;
  int sm = 0;                  // compute capability as 10*major+minor, e.g. 90
  bool arch_specific = false;  // the "a" suffix: sm_90a

  static Target cpu() { return Target{}; }
  static Target cuda(int sm, bool arch_specific = false) { return Target{Kind::kCuda, sm, arch_specific}; }
  /// Parses "cpu", "sm_80", "sm_90a"; throws UserError naming the text otherwise.
  static Target parse(const std::string& text);

  bool is_cpu() const { return kind == Kind::kCpu; }
  bool is_cuda() const { return kind == Kind::kCuda; }
  /// "cpu" or "sm_XX[a]".
  std::string to_string() const;
  bool operator==(const Target& other) const = default;
};

}  // namespace switchyard
