#include "jit/target.h"

#include <unistd.h>
#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#endif

#include <cctype>

#include "core/error.h"

namespace switchyard {

long host_l2_bytes() {
  static const long bytes = [] {
    const long reported = sysconf(_SC_LEVEL2_CACHE_SIZE);
    return reported > 0 ? reported : 1L << 20;
  }();
  return bytes;
}

int host_vector_bytes() {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512f")) return 64;
  if (__builtin_cpu_supports("avx")) return 32;
#endif
  return 16;
}

namespace {

#if defined(__x86_64__)
// Whether this process may use AMX's bfloat16 tiles: the CPU has AMX-TILE and AMX-BF16 (CPUID leaf
// 7, EDX bits 24 and 22; clang 16's __builtin_cpu_supports does not know them) and Linux grants
// the process the tile data state (arch_prctl ARCH_REQ_XCOMP_PERM for XTILEDATA, asked once;
// kernels before 5.16 refuse it, and a tile instruction without it is SIGILL).
bool host_amx_usable() {
  static const bool usable = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) return false;
    constexpr unsigned kAmxBf16 = 1u << 22, kAmxTile = 1u << 24;
    if ((edx & kAmxBf16) == 0 || (edx & kAmxTile) == 0) return false;
    constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtileData = 18;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtileData) == 0;
  }();
  return usable;
}
#endif

}  // namespace

unsigned host_cpu_features() {
  unsigned features = 0;
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512bf16")) features |= kCpuBf16Dot;
  if (__builtin_cpu_supports("avx512bf16") && __builtin_cpu_is("amd")) features |= kCpuFastBf16Dot;
  if (__builtin_cpu_supports("avx512f")) features |= kCpu32VectorRegisters;
  if (host_amx_usable()) features |= kCpuAmxBf16;
#elif defined(__aarch64__)
  features |= kCpu32VectorRegisters;
#endif
  return features;
}

unsigned cpu_features_of(const std::string& triple, const std::vector<std::string>& llvm_features) {
  unsigned features = triple.rfind("aarch64", 0) == 0 ? kCpu32VectorRegisters : 0u;
  bool amx_tile = false, amx_bf16 = false, amd = false;
  for (const std::string& feature : llvm_features) {
    if (feature == "+avx512bf16") features |= kCpuBf16Dot;
    if (feature == "+avx512f") features |= kCpu32VectorRegisters;
    amx_tile = amx_tile || feature == "+amx-tile";
    amx_bf16 = amx_bf16 || feature == "+amx-bf16";
    amd = amd || feature == "+sse4a";  // AMD's since the K10; no Intel CPU has it
  }
  if ((features & kCpuBf16Dot) != 0 && amd) features |= kCpuFastBf16Dot;
  return features | (amx_tile && amx_bf16 ? kCpuAmxBf16 : 0u);
}

int Target::cpu_vector_bytes() const {
  return vector_bytes != 0 ? vector_bytes : host_vector_bytes();
}

long Target::cpu_l2_bytes() const {
  return l2_bytes != 0 ? l2_bytes : host_l2_bytes();
}

bool Target::has(CpuFeature feature) const {
  return ((vector_bytes != 0 ? cpu_features : host_cpu_features()) & feature) != 0;
}

Target Target::parse(const std::string& text) {
  if (text == "cpu") return cpu();
  bool ok = text.size() >= 5 && text.rfind("sm_", 0) == 0;
  size_t digits_end = 3;
  while (ok && digits_end < text.size() && std::isdigit(static_cast<unsigned char>(text[digits_end]))) ++digits_end;
  ok = ok && digits_end - 3 >= 2 && digits_end - 3 <= 3;
  std::string suffix = ok ? text.substr(digits_end) : "";
  ok = ok && (suffix.empty() || suffix == "a");
  int sm = ok ? std::stoi(text.substr(3, digits_end - 3)) : 0;
  SY_CHECK(ok && sm >= 50 && sm <= 200) << "unknown target '" << text
                                        << "'; expected cpu or a CUDA architecture such as sm_80, sm_90 or sm_90a";
  return cuda(sm, suffix == "a");
}

bool Target::runs_on(const Target& device) const {
  if (kind != device.kind) return false;
  return is_cpu() || (sm == device.sm && (!arch_specific || device.arch_specific));
}

std::string Target::to_string() const {
  if (is_cpu()) return "cpu";
  return "sm_" + std::to_string(sm) + (arch_specific ? "a" : "");
}

}  // namespace switchyard
