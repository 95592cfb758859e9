#include "runtime/tensor.h"

#include <memory>

#include <dlpack/dlpack.h>

#include <sstream>
#include <utility>

#include <cstring>

#include "core/error.h"
#include "core/half.h"
#include "runtime/cuda_device.h"
#include "runtime/device.h"

namespace switchyard {

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

std::string DeviceRef::to_string() const {
  return kind == Kind::kCpu ? "cpu" : "cuda:" + std::to_string(index);
}

Tensor::Tensor(void* data, DType dtype, std::vector<int64_t> shape, DeviceRef device, std::vector<int64_t> strides)
    : data_(data), dtype_(dtype), shape_(std::move(shape)), strides_(std::move(strides)), device_(device) {
  for (int64_t extent : shape_) SY_CHECK(extent >= 0) << "tensor extent " << extent << " is negative";
  if (strides_.empty()) {
    strides_.resize(shape_.size());
    int64_t stride = 1;
    for (size_t i = shape_.size(); i-- > 0;) {
      strides_[i] = stride;
      stride *= shape_[i];
    }
  }
  SY_CHECK(strides_.size() == shape_.size())
      << "tensor has " << shape_.size() << " dims but " << strides_.size() << " strides";
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t extent : shape_) n *= extent;
  return n;
}

bool Tensor::is_contiguous() const {
  int64_t stride = 1;
  for (size_t i = shape_.size(); i-- > 0;) {
    if (shape_[i] != 1 && strides_[i] != stride) return false;
    stride *= shape_[i];
  }
  return true;
}

std::string Tensor::describe() const {
  std::ostringstream out;
  out << dtype_name(dtype_) << shape_string(shape_) << " on " << device_.to_string();
  if (!is_contiguous()) out << " (strided)";
  return out.str();
}

namespace {

DType dtype_from_dlpack(const DLDataType& t) {
  SY_CHECK(t.lanes == 1) << "DLPack tensors with " << t.lanes << " lanes are not supported";
  if (t.code == kDLFloat && t.bits == 32) return DType::kFloat32;
  if (t.code == kDLFloat && t.bits == 64) return DType::kFloat64;
  if (t.code == kDLFloat && t.bits == 16) return DType::kFloat16;
  if (t.code == kDLBfloat && t.bits == 16) return DType::kBFloat16;
  if (t.code == kDLInt && t.bits == 32) return DType::kInt32;
  SY_THROW(UserError) << "DLPack dtype (code " << int(t.code) << ", bits " << int(t.bits)
                      << ") is not supported; expected float32/64, float16, bfloat16 or int32";
}

DLDataType dtype_to_dlpack(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return {kDLFloat, 32, 1};
    case DType::kFloat64:
      return {kDLFloat, 64, 1};
    case DType::kFloat16:
      return {kDLFloat, 16, 1};
    case DType::kBFloat16:
      return {kDLBfloat, 16, 1};
    case DType::kInt32:
      return {kDLInt, 32, 1};
  }
  return {kDLFloat, 32, 1};
}

struct DlpackHolder {
  DLManagedTensor managed{};
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;
  std::unique_ptr<Buffer> owner;  // the memory, when the DLPack tensor owns it
};

}  // namespace

Tensor Tensor::from_dlpack(const DLTensor& t) {
  DeviceRef device;
  if (t.device.device_type == kDLCPU || t.device.device_type == kDLCUDAHost)
    device = {DeviceRef::Kind::kCpu, 0};
  else if (t.device.device_type == kDLCUDA)
    device = {DeviceRef::Kind::kCuda, t.device.device_id};
  else
    SY_THROW(UserError) << "DLPack device type " << int(t.device.device_type)
                        << " is not supported; expected CPU or CUDA";
  SY_CHECK(t.ndim >= 0 && t.ndim <= 16) << "DLPack tensor has " << t.ndim << " dims; expected 0 to 16";
  std::vector<int64_t> shape(t.shape, t.shape + t.ndim);
  std::vector<int64_t> strides;
  if (t.strides != nullptr) strides.assign(t.strides, t.strides + t.ndim);
  DType dtype = dtype_from_dlpack(t.dtype);
  auto* base = static_cast<char*>(t.data) + t.byte_offset;
  return Tensor(base, dtype, std::move(shape), device, std::move(strides));
}

DLManagedTensor* Tensor::to_dlpack() const {
  auto* holder = new DlpackHolder;
  holder->shape = shape_;
  holder->strides = strides_;
  DLTensor& t = holder->managed.dl_tensor;
  t.data = data_;
  t.device = {device_.kind == DeviceRef::Kind::kCpu ? kDLCPU : kDLCUDA, device_.index};
  t.ndim = static_cast<int32_t>(shape_.size());
  t.dtype = dtype_to_dlpack(dtype_);
  t.shape = holder->shape.data();
  t.strides = holder->strides.data();
  t.byte_offset = 0;
  holder->managed.manager_ctx = holder;
  holder->managed.deleter = [](DLManagedTensor* self) { delete static_cast<DlpackHolder*>(self->manager_ctx); };
  return &holder->managed;
}

DLManagedTensor* to_dlpack_owning(std::unique_ptr<Buffer> storage, const Tensor& view) {
  if (storage && storage->device().is_cuda()) static_cast<CudaDevice&>(storage->device()).hand_out(storage->data());
  DLManagedTensor* managed = view.to_dlpack();
  static_cast<DlpackHolder*>(managed->manager_ctx)->owner = std::move(storage);
  return managed;
}

Buffer::Buffer(Device& device, size_t bytes) : device_(&device), data_(device.allocate(bytes)), bytes_(bytes) {}

Buffer::Buffer(Buffer&& other) noexcept
    : device_(std::exchange(other.device_, nullptr)),
      data_(std::exchange(other.data_, nullptr)),
      bytes_(std::exchange(other.bytes_, 0)) {}

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    if (device_ != nullptr) device_->release(data_);
    device_ = std::exchange(other.device_, nullptr);
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

Buffer::~Buffer() {
  if (device_ != nullptr) device_->release(data_);
}

Tensor Buffer::view(DType dtype, std::vector<int64_t> shape) const {
  Tensor t(data_, dtype, std::move(shape), device_->ref());
  SY_CHECK(t.nbytes() <= bytes_) << "a " << t.describe() << " view needs " << t.nbytes() << " bytes; the buffer has "
                                 << bytes_;
  return t;
}

std::string encode_host_values(const std::vector<double>& values, DType dtype) {
  SY_INTERNAL_CHECK(dtype != DType::kInt32) << "encode_host_values takes a floating dtype";
  const size_t size = dtype_size(dtype);
  std::string host(values.size() * size, '\0');
  for (size_t i = 0; i < values.size(); ++i) {
    const double v = values[i];
    const float x = static_cast<float>(v);
    const uint16_t half = dtype == DType::kFloat16 ? double_to_half_bits(v) : double_to_bf16_bits(v);
    std::memcpy(&host[i * size],
                dtype == DType::kFloat64   ? static_cast<const void*>(&v)
                : dtype == DType::kFloat32 ? static_cast<const void*>(&x)
                                           : static_cast<const void*>(&half),
                size);
  }
  return host;
}

}  // namespace switchyard
