// The element types: public (switchyard/dtype.h).
#pragma once

#include <switchyard/dtype.h>
