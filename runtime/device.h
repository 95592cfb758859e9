// Devices: public (switchyard/device.h), with the JIT types their kernel methods take.
#pragma once

#include <switchyard/device.h>

#include "jit/compiler.h"
#include "jit/launch_config.h"
#include "jit/target.h"
