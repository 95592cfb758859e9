// safetensors files: an 8-byte little-endian header length, a JSON header naming each tensor's
// dtype, shape and byte range, then the data. Reading validates the header before any data is
// read; layers stream the data into device memory in chunks (SafetensorsReader).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/fs.h"
#include "jit/dtype.h"
#include "runtime/device.h"
#include "runtime/pinned_host_buffer.h"

namespace switchyard {

struct StoredTensor {
  std::string dtype;  // safetensors name: F32, F64, F16, BF16, I32, I64
  std::vector<int64_t> shape;
  std::string bytes;
};

using TensorFile = std::map<std::string, StoredTensor>;

/// Where one tensor's bytes lie in a safetensors file.
struct TensorSlice {
  std::string dtype;  // safetensors name
  std::vector<int64_t> shape;
  uint64_t offset = 0;  // from the start of the file
  uint64_t bytes = 0;
};
using TensorIndex = std::map<std::string, TensorSlice>;

/// The header of `path`, validated: within the file, known dtypes, byte ranges inside the data
/// and matching the shapes, no overlaps. Reads the header only. Throws UserError naming the file
/// and the problem.
TensorIndex read_safetensors_index(const std::string& path);
/// The index and every tensor's bytes (validated as read_safetensors_index).
TensorFile read_safetensors(const std::string& path);

/// An open safetensors file: its index, read and validated on opening (as
/// read_safetensors_index), and its tensors read in chunks: into host memory, or into a device's
/// memory through two host buffers of `chunk_bytes` (straight into the memory on the CPU device),
/// so a file of any size needs no more host memory than two chunks.
class SafetensorsReader {
 public:
  explicit SafetensorsReader(const std::string& path, size_t chunk_bytes = size_t{64} << 20);
  SafetensorsReader(const SafetensorsReader&) = delete;
  SafetensorsReader& operator=(const SafetensorsReader&) = delete;

  const TensorIndex& index() const { return index_; }
  /// The header's __metadata__ (string to string; empty where the file has none).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  void read(const TensorSlice& slice, void* host_dst);
  /// Every tensor's bytes, in host memory (read_safetensors).
  TensorFile read_all();
  void read_into(Device& device, const TensorSlice& slice, void* device_dst);
  /// read_into through the host buffers on any device: chunk i + 1 is read from the file (by
  /// several threads for large chunks) while chunk i is copied to the device.
  void read_staged(Device& device, const TensorSlice& slice, void* device_dst);

 private:
  void read_header();  // index_ and metadata_, validated
  void read_metadata(const nlohmann::json& info);

  std::string path_;
  fs::FileDescriptor fd_;
  TensorIndex index_;
  std::map<std::string, std::string> metadata_;
  size_t chunk_bytes_;
  std::array<PinnedHostBuffer, 2> staging_;  // read_staged's, page-locked for a CUDA device
};
/// Writes atomically (temporary file, fsync, rename).
void write_safetensors(const std::string& path, const TensorFile& tensors,
                       const std::map<std::string, std::string>& metadata = {});

/// One tensor of a file being written, its bytes copied out by `read` a piece at a time (`count`
/// bytes from `offset` into host memory at `out`): from a device's memory, say, so that a file as
/// large as memory is written without a copy of it.
struct TensorSource {
  std::string dtype;  // safetensors name
  std::vector<int64_t> shape;
  uint64_t bytes = 0;
  std::function<void(uint64_t offset, size_t count, char* out)> read;
};
using TensorSources = std::map<std::string, TensorSource>;

/// write_safetensors from sources, through one host buffer of at most `chunk_bytes`. An exception
/// from a source or the file leaves no file behind (and one already at `path` as it was); a file
/// that cannot be written is a UserError naming it.
void write_safetensors_streamed(const std::string& path, const TensorSources& tensors,
                                const std::map<std::string, std::string>& metadata = {},
                                size_t chunk_bytes = size_t{64} << 20);
/// The safetensors name of a dtype: F32, F64, F16, BF16, I32.
std::string safetensors_dtype_name(DType dtype);
/// Bytes per element of a safetensors dtype name, 0 when unknown.
size_t safetensors_element_size(const std::string& dtype);

}  // namespace switchyard
