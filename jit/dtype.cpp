#include "jit/dtype.h"

#include "core/error.h"

namespace switchyard {

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return "float32";
    case DType::kFloat64:
      return "float64";
    case DType::kFloat16:
      return "float16";
    case DType::kBFloat16:
      return "bfloat16";
    case DType::kInt32:
      return "int32";
  }
  return "?";
}

DType parse_dtype(const std::string& text) {
  if (text == "float32" || text == "f32" || text == "fp32" || text == "float") return DType::kFloat32;
  if (text == "float64" || text == "f64" || text == "fp64" || text == "double") return DType::kFloat64;
  if (text == "float16" || text == "f16" || text == "fp16" || text == "half") return DType::kFloat16;
  if (text == "bfloat16" || text == "bf16") return DType::kBFloat16;
  if (text == "int32") return DType::kInt32;
  SY_THROW(UserError) << "unknown dtype '" << text
                      << "'; expected float32, float64, float16, bfloat16 (or int32 for indices)";
}

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
    case DType::kInt32:
      return 4;
    case DType::kFloat64:
      return 8;
    case DType::kFloat16:
    case DType::kBFloat16:
      return 2;
  }
  return 0;
}

}  // namespace switchyard
