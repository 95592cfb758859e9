// Heap memory for CPU templates without system headers: the C library's allocator is resolved
// from the host process when the kernel is linked, the runtime's scratch by the JIT linker.
#pragma once

extern "C" {
void* malloc(decltype(sizeof(0)));
void free(void*);
// The calling thread's working memory (runtime/cpu_scratch.h): at least `bytes`, 64-byte
// aligned, kept by the runtime between launches (nothing to free); nullptr when out of memory.
void* sy_cpu_thread_scratch(unsigned long bytes) noexcept;
}
