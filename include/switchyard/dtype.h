// Element types of tensors and layers (and what a kernel can be specialized for).
#pragma once

#include <cstddef>
#include <string>

#include <switchyard/export.h>

namespace switchyard {

enum class DType { kFloat32, kFloat64, kFloat16, kBFloat16, kInt32 };

/// Canonical name: float32, float64, float16, bfloat16, int32 (int32 only for index tensors).
SWITCHYARD_API const char* dtype_name(DType dtype);
/// Accepts the canonical names and the short forms f32, fp32, f64, fp64, f16, fp16, bf16.
SWITCHYARD_API DType parse_dtype(const std::string& text);
SWITCHYARD_API size_t dtype_size(DType dtype);

}  // namespace switchyard
