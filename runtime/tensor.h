// Tensors and buffers: public (switchyard/tensor.h).
#pragma once

#include <switchyard/tensor.h>

#include <string>
#include <vector>

namespace switchyard {

/// `values` as the bytes of a `dtype` tensor, each rounded once to the dtype (nearest even).
std::string encode_host_values(const std::vector<double>& values, DType dtype);

}  // namespace switchyard
