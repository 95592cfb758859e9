// The collectives interface: public (switchyard/communicator.h).
#pragma once

#include <switchyard/communicator.h>
