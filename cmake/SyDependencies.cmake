# Third-party dependencies, all from Debian packages (scripts/setup-deps installs them).
find_package(Threads REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
find_package(dlpack CONFIG REQUIRED)
find_package(GTest REQUIRED)

# xxHash: header and library, no CMake package in Debian.
find_path(XXHASH_INCLUDE_DIR xxhash.h REQUIRED)
find_library(XXHASH_LIBRARY NAMES xxhash REQUIRED)
add_library(sy_xxhash INTERFACE)
target_include_directories(sy_xxhash SYSTEM INTERFACE "${XXHASH_INCLUDE_DIR}")
target_link_libraries(sy_xxhash INTERFACE "${XXHASH_LIBRARY}")

# LLVM 16 + clang (shared libraries), linked directly: Debian's exported CMake targets reference
# static archives that are not all installed.
set(SY_LLVM_ROOT "/usr/lib/llvm-16" CACHE PATH "LLVM 16 installation root")
find_library(SY_LIBLLVM NAMES LLVM-16 PATHS "${SY_LLVM_ROOT}/lib" NO_DEFAULT_PATH REQUIRED)
find_library(SY_LIBCLANG_CPP NAMES clang-cpp PATHS "${SY_LLVM_ROOT}/lib" NO_DEFAULT_PATH REQUIRED)
add_library(sy_llvm INTERFACE)
target_include_directories(sy_llvm SYSTEM INTERFACE "${SY_LLVM_ROOT}/include")
target_compile_definitions(sy_llvm INTERFACE _GNU_SOURCE __STDC_CONSTANT_MACROS __STDC_FORMAT_MACROS __STDC_LIMIT_MACROS)
target_link_libraries(sy_llvm INTERFACE "${SY_LIBCLANG_CPP}" "${SY_LIBLLVM}")

find_package(benchmark QUIET)
find_package(BLAS QUIET)
