// Switchyard's public C++ API in one include: errors, tensors (DLPack in and out), devices and
// the context, dispatch and combine, the MoE layer, the groups of a distributed layer (MPI, NCCL), the kernel cache,
// and the C API with the version. Everything an application needs; nothing else in the library is stable or exported.
#pragma once

#include <switchyard/cache.h>
#include <switchyard/comm.h>
#include <switchyard/communicator.h>
#include <switchyard/context.h>
#include <switchyard/custom.h>
#include <switchyard/device.h>
#include <switchyard/dispatch.h>
#include <switchyard/dtype.h>
#include <switchyard/error.h>
#include <switchyard/moe_layer.h>
#include <switchyard/sgd_options.h>
#include <switchyard/switchyard_c.h>
#include <switchyard/tensor.h>
#include <switchyard/version.h>
