// Heap memory for CPU templates without system headers: the C library's allocator is resolved
// from the host process when the kernel is linked.
#pragma once

extern "C" {
void* malloc(decltype(sizeof(0)));
void free(void*);
}
