// Portability macros for code shared by host C++, CPU templates and CUDA templates.
#pragma once

#if defined(__CUDACC__)
#define SY_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define SY_HOST_DEVICE inline
#endif
