// Dumps a kernel for inspection: generated source, every artifact (CUBIN, PTX, and SASS when
// nvdisasm is on the PATH; or object, LLVM IR and assembly) and kernel.json with spec and key.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "jit/compiler.h"

namespace switchyard {

/// Writes into <dir>/<target>/<family>-<key prefix>/ and returns the kernel.json it wrote
/// (paths relative to `dir`). Throws UserError naming the directory when it is not writable.
nlohmann::json dump_kernel(const std::string& dir, const KernelSpec& spec, const std::string& key, const Binary& binary,
                           const Source& source);

/// Path of nvdisasm (PATH, then $CUDA_HOME/bin, /usr/local/cuda/bin), or "" when absent.
std::string find_nvdisasm();

}  // namespace switchyard
