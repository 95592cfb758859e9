// Turns a failed compile into a CompileError a person can act on: the spec, the compiler's
// log, the options, and the numbered lines of the generated source (or header) around the error.
#pragma once

#include <string>

#include "jit/compiler.h"

namespace switchyard {

/// Formats and throws. `compiler` is "nvrtc" or "clang"; `log` is the compiler's output.
[[noreturn]] void throw_compile_error(const std::string& compiler, const KernelSpec& spec, const Source& source,
                                      const std::string& options, const std::string& log);

/// Numbered lines [line - context, line + context] of `text` ("" if out of range), marking `line`.
std::string numbered_excerpt(const std::string& text, int line, int context);

}  // namespace switchyard
