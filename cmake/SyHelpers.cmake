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

# sy_add_test(NAME [GPU] SOURCES ... DEPS ... LABELS ...): one GoogleTest binary, registered with ctest.
function(sy_add_test name)
  cmake_parse_arguments(ARG "GPU" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
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
  add_test(NAME ${name} COMMAND ${name} --gtest_brief=1)
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 600)
  endif()
  set_tests_properties(${name} PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT} SKIP_RETURN_CODE 77
    ENVIRONMENT "SWITCHYARD_CACHE_DIR=${CMAKE_BINARY_DIR}/test-cache;SY_TEST_SWITCHYARD_BIN=$<TARGET_FILE:switchyard>;SY_TEST_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
endfunction()

function(sy_add_example name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  sy_target_defaults(${name})
endfunction()
