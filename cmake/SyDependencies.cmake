# Third-party dependencies, all from Debian packages (scripts/setup-deps installs them).
#
# SY_BUNDLED_DEPS: a folder made by scripts/device-bundle (headers of nlohmann/json, CLI11,
# dlpack, xxhash and GoogleTest's sources) for machines that cannot install packages, such as
# the lent GPU machine; there the CPU JIT (LLVM) is left out with SY_WITH_CPU_JIT=OFF.
find_package(Threads REQUIRED)
# OpenMPI for CPU ranks (comm/); optional so that a machine without it (the lent GPU machine)
# still builds everything else.
find_package(MPI COMPONENTS CXX)

if(SY_BUNDLED_DEPS)
  foreach(name nlohmann_json::nlohmann_json CLI11::CLI11 dlpack::dlpack)
    string(REPLACE "::" "_" target_name "sy_bundled_${name}")
    add_library(${target_name} INTERFACE)
    target_include_directories(${target_name} SYSTEM INTERFACE "${SY_BUNDLED_DEPS}/include")
    add_library(${name} ALIAS ${target_name})
  endforeach()
  set(XXHASH_INCLUDE_DIR "${SY_BUNDLED_DEPS}/include")
  set(INSTALL_GTEST OFF CACHE BOOL "" FORCE)
  add_subdirectory("${SY_BUNDLED_DEPS}/googletest" "${CMAKE_BINARY_DIR}/googletest" EXCLUDE_FROM_ALL)
else()
  find_package(nlohmann_json 3.10 REQUIRED)
  find_package(CLI11 CONFIG REQUIRED)
  find_package(dlpack CONFIG REQUIRED)
  find_package(GTest REQUIRED)
  find_path(XXHASH_INCLUDE_DIR xxhash.h REQUIRED)
endif()

# xxHash is used header-only (XXH_INLINE_ALL), so no library is linked.
add_library(sy_xxhash INTERFACE)
target_include_directories(sy_xxhash SYSTEM INTERFACE "${XXHASH_INCLUDE_DIR}")

# LLVM 16 + clang (shared libraries), linked directly: Debian's exported CMake targets reference
# static archives that are not all installed.
add_library(sy_llvm INTERFACE)
if(SY_WITH_CPU_JIT)
  set(SY_LLVM_ROOT "/usr/lib/llvm-16" CACHE PATH "LLVM 16 installation root")
  find_library(SY_LIBLLVM NAMES LLVM-16 PATHS "${SY_LLVM_ROOT}/lib" NO_DEFAULT_PATH REQUIRED)
  find_library(SY_LIBCLANG_CPP NAMES clang-cpp PATHS "${SY_LLVM_ROOT}/lib" NO_DEFAULT_PATH REQUIRED)
  target_include_directories(sy_llvm SYSTEM INTERFACE "${SY_LLVM_ROOT}/include")
  target_compile_definitions(sy_llvm INTERFACE _GNU_SOURCE __STDC_CONSTANT_MACROS __STDC_FORMAT_MACROS __STDC_LIMIT_MACROS)
  target_link_libraries(sy_llvm INTERFACE "${SY_LIBCLANG_CPP}" "${SY_LIBLLVM}")
endif()

find_package(BLAS QUIET)
