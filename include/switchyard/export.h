// What the shared library exports: the public API only (everything else is hidden).
#pragma once

#if defined(__GNUC__) || defined(__clang__)
#define SWITCHYARD_API __attribute__((visibility("default")))
#else
#define SWITCHYARD_API
#endif
