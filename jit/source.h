// Source generation: the tiny translation unit that includes a template header, instantiates
// it with a spec's parameters and exposes one entry point.
#pragma once

#include <string>
#include <vector>

#include "jit/kernel_spec.h"

namespace switchyard {

struct Source {
  std::string text;
  std::string file_name;             // kernel.cpp (CPU) or kernel.cu (CUDA)
  std::string entry;                 // CPU: exported symbol; CUDA: NVRTC name expression
  std::vector<std::string> headers;  // include spellings it needs, transitively, sorted
};

/// The CPU entry symbol every generated CPU kernel exports: void(void** params, unsigned block, unsigned grid).
inline constexpr const char* kCpuEntrySymbol = "sy_entry";

/// Generates the source of `spec` (validated first; throws UserError on a bad spec).
Source generate_source(const KernelSpec& spec);

/// The embedded headers `root` includes, transitively, itself included, sorted.
std::vector<std::string> transitive_includes(const std::string& root);

}  // namespace switchyard
