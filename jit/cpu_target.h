// What the CPU JIT compiles for: an LLVM CPU name and the exact feature list. Resolved from the
// host (or from SWITCHYARD_CPU) once per compiler; the cache key records the result.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "jit/target.h"

namespace switchyard {

/// The host as LLVM 16 reports it. `name` is "generic" on a CPU newer than this LLVM.
struct HostCpu {
  std::string triple;
  std::string name;
  std::map<std::string, bool> features;  // every feature the detector checked: present or not

  static HostCpu detect();
};

struct CpuTarget {
  std::string triple;
  std::string cpu;                           // what clang gets as -target-cpu
  std::vector<std::string> features;         // "+avx2", ... sorted
  std::string reason;                        // how `cpu` was chosen, for `switchyard info` and logs
  std::vector<std::string> missing_on_host;  // features compiled for that the host lacks ("" = none)
  bool requested = false;                    // named by SWITCHYARD_CPU rather than this host

  /// "+a,+b,...": the form the cache key and `switchyard info` show.
  std::string feature_string() const;
  /// Whether `features` holds `feature` ("+avx2").
  bool has_feature(const std::string& feature) const;
  /// The widest vector registers of these features: 64 with AVX-512, 32 with AVX, else 16.
  int vector_bytes() const;
  /// L2 bytes per core: this host's, or 1 MB (the smallest of current x86 and Arm server cores)
  /// for a requested CPU, so that every machine of a fleet sharing a cache asks for the same specs.
  long l2_bytes() const;
  /// What kernel families choose specs by for this CPU: its vectors, L2 and CpuFeature bits.
  Target kernel_target() const;
};

/// Chooses the CPU to compile for. `requested` is SWITCHYARD_CPU ("" or "host": the host).
/// - A host CPU name LLVM knows: that name plus every feature the host reports.
/// - An unknown host CPU ("generic" on x86-64): the architecture's baseline CPU (x86-64 or
///   generic) plus every feature the host reports, so the code still uses its widest vectors.
/// - A requested name (e.g. x86-64-v3, skylake-avx512): that CPU and exactly the features it
///   implies, so a cache built on one machine serves a fleet of mixed CPUs.
/// Throws UserError for a requested name clang does not know, listing the valid ones.
CpuTarget resolve_cpu_target(const HostCpu& host, const std::string& requested);

}  // namespace switchyard
