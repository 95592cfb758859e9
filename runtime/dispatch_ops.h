// Dispatch and combine: public (switchyard/dispatch.h).
#pragma once

#include <switchyard/dispatch.h>

#include "runtime/context.h"
#include "runtime/tensor.h"
