// The communicator element of a tensor dtype (what collectives on tensors' data pass).
#pragma once

#include "comm/communicator.h"
#include "core/error.h"
#include "jit/dtype.h"

namespace switchyard {

inline comm::Element comm_element(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return comm::Element::kFloat32;
    case DType::kFloat64:
      return comm::Element::kFloat64;
    case DType::kFloat16:
      return comm::Element::kFloat16;
    case DType::kBFloat16:
      return comm::Element::kBFloat16;
    case DType::kInt32:
      return comm::Element::kInt32;
  }
  SY_THROW(InternalError) << "no communicator element for dtype " << static_cast<int>(dtype);
}

}  // namespace switchyard
