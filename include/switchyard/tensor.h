// Tensor: a non-owning view (pointer, dtype, shape, strides, device). Buffer: owned memory
// from a Device. DLPack in and out, so tensors of other frameworks pass without copies.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <dlpack/dlpack.h>
#include <switchyard/dtype.h>
#include <switchyard/export.h>

namespace switchyard {

class Device;

/// "[2, 3, 4]": the one spelling of a shape in every message.
SWITCHYARD_API std::string shape_string(const std::vector<int64_t>& shape);

struct SWITCHYARD_API DeviceRef {
  enum class Kind { kCpu, kCuda };
  Kind kind = Kind::kCpu;
  int index = 0;
  bool operator==(const DeviceRef&) const = default;
  std::string to_string() const;
};

class SWITCHYARD_API Tensor {
 public:
  Tensor() = default;
  /// Strides in elements; empty = contiguous row-major.
  Tensor(void* data, DType dtype, std::vector<int64_t> shape, DeviceRef device = {}, std::vector<int64_t> strides = {});

  void* data() const { return data_; }
  template <typename T>
  T* data_as() const {
    return static_cast<T*>(data_);
  }
  DType dtype() const { return dtype_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  const std::vector<int64_t>& strides() const { return strides_; }
  int64_t dim(size_t i) const { return shape_.at(i); }
  size_t ndim() const { return shape_.size(); }
  int64_t numel() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  DeviceRef device() const { return device_; }
  bool is_contiguous() const;
  /// e.g. "float32[8, 64] on cpu"
  std::string describe() const;

  /// A view of a DLPack tensor (caller keeps it alive). Throws UserError for unsupported
  /// dtypes or devices, naming them.
  static Tensor from_dlpack(const DLTensor& tensor);
  /// A DLPack view of this tensor; its deleter frees only the shape storage, never the data.
  DLManagedTensor* to_dlpack() const;

 private:
  void* data_ = nullptr;
  DType dtype_ = DType::kFloat32;
  std::vector<int64_t> shape_;
  std::vector<int64_t> strides_;
  DeviceRef device_;
};

/// Owned device memory (RAII).
class SWITCHYARD_API Buffer {
 public:
  Buffer(Device& device, size_t bytes);
  Buffer(Buffer&& other) noexcept;
  Buffer& operator=(Buffer&& other) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer();

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  /// Where the memory lives (what copies out of it go through).
  Device& device() const { return *device_; }
  /// A contiguous tensor view of the buffer; throws if it does not fit.
  Tensor view(DType dtype, std::vector<int64_t> shape) const;

 private:
  Device* device_ = nullptr;
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

/// A DLPack tensor viewing `view` that owns `storage`: its deleter frees the memory (how results
/// leave through the C API and the Python module without a copy).
SWITCHYARD_API DLManagedTensor* to_dlpack_owning(std::unique_ptr<Buffer> storage, const Tensor& view);

}  // namespace switchyard
