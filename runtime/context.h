// The runtime context: public (switchyard/context.h), with the internals its methods name.
#pragma once

#include <switchyard/context.h>

#include "core/settings.h"
#include "jit/kernel_store.h"
#include "runtime/device.h"
