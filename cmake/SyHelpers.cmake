# Project-wide helpers: one place that decides warnings and sanitizers for our own targets.

function(sy_target_defaults target)
  target_compile_options(${target} PRIVATE -Wall -Wextra)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    # NOTE: GCC 12 reports -Wrestrict falsely for `"literal" + std::string` at -O3 (GCC PR105329).
    target_compile_options(${target} PRIVATE -Wno-restrict)
  endif()
  if(SY_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(SY_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=${SY_SANITIZE} -fno-omit-frame-pointer)
    target_link_options(${target} PUBLIC -fsanitize=${SY_SANITIZE})
  endif()
endfunction()

# sy_add_library(NAME SOURCES ... DEPS ...)
function(sy_add_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  # The public headers (include/, and the generated version.h) come first: what an application sees.
  target_include_directories(${name} PUBLIC "${PROJECT_SOURCE_DIR}/include" "${PROJECT_BINARY_DIR}/include"
                                            "${PROJECT_SOURCE_DIR}")
  target_link_libraries(${name} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  sy_target_defaults(${name})
endfunction()

# sy_add_test(NAME [GPU] [TIMEOUT s] [SHARDS n] SOURCES ... DEPS ... LABELS ...): one GoogleTest
# binary, registered with ctest. SHARDS n registers it as n tests (NAME_1of<n> ...) that each run a
# GoogleTest shard, so a long suite spreads over the cores and each part has its own timeout; the
# disk cache's per-key lock keeps two shards from compiling the same kernel twice.
function(sy_add_test name)
  cmake_parse_arguments(ARG "GPU" "TIMEOUT;SHARDS" "SOURCES;DEPS;LABELS" ${ARGN})
  if(ARG_GPU)
    # GPU suites exit 77 when every test skipped (no device): CTest shows them as skipped.
    add_executable(${name} ${ARG_SOURCES} "${PROJECT_SOURCE_DIR}/tests/support/gpu_test_main.cpp")
    target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest)
  else()
    add_executable(${name} ${ARG_SOURCES})
    target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main)
  endif()
  target_include_directories(${name} PRIVATE "${PROJECT_SOURCE_DIR}")
  sy_target_defaults(${name})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 600)
  endif()
  set(environment "SWITCHYARD_CACHE_DIR=${CMAKE_BINARY_DIR}/test-cache"
    "SY_TEST_SWITCHYARD_BIN=$<TARGET_FILE:switchyard>" "SY_TEST_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
  if(NOT ARG_SHARDS)
    add_test(NAME ${name} COMMAND ${name} --gtest_brief=1)
    set_tests_properties(${name} PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT} SKIP_RETURN_CODE 77
      ENVIRONMENT "${environment}")
    return()
  endif()
  math(EXPR last "${ARG_SHARDS} - 1")
  foreach(index RANGE ${last})
    math(EXPR part "${index} + 1")
    set(test_name ${name}_${part}of${ARG_SHARDS})
    add_test(NAME ${test_name} COMMAND ${name} --gtest_brief=1)
    set_tests_properties(${test_name} PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT} SKIP_RETURN_CODE 77
      ENVIRONMENT "${environment};GTEST_TOTAL_SHARDS=${ARG_SHARDS};GTEST_SHARD_INDEX=${index}")
  endforeach()
endfunction()

function(sy_add_example name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  sy_target_defaults(${name})
endfunction()
