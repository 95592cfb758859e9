// Tensors and buffers: public (switchyard/tensor.h).
#pragma once

#include <switchyard/tensor.h>
