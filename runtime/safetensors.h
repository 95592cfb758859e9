// safetensors files: an 8-byte little-endian header length, a JSON header naming each tensor's
// dtype, shape and byte range, then the data. Reading validates everything before returning.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "jit/dtype.h"

namespace switchyard {

struct StoredTensor {
  std::string dtype;  // safetensors name: F32, F64, F16, BF16, I32, I64
  std::vector<int64_t> shape;
  std::string bytes;
};

using TensorFile = std::map<std::string, StoredTensor>;

/// Reads and validates `path`: header within the file, known dtypes, byte ranges inside the data
/// and matching the shapes, no overlaps. Throws UserError naming the file and the problem.
TensorFile read_safetensors(const std::string& path);
/// Writes atomically (temporary file, fsync, rename).
void write_safetensors(const std::string& path, const TensorFile& tensors,
                       const std::map<std::string, std::string>& metadata = {});
/// The safetensors name of a dtype: F32, F64, F16, BF16, I32.
std::string safetensors_dtype_name(DType dtype);
/// Bytes per element of a safetensors dtype name, 0 when unknown.
size_t safetensors_element_size(const std::string& dtype);

}  // namespace switchyard
