// The exit status of a test binary: 77 when every test skipped (no device), which CTest reports
// as "Skipped" rather than "Passed", so a GPU suite never passes silently.
#pragma once

#include <gtest/gtest.h>

namespace switchyard::testing {

inline int exit_status(int run_all_tests_result) {
  const auto* unit = ::testing::UnitTest::GetInstance();
  if (run_all_tests_result == 0 && unit->test_to_run_count() > 0 &&
      unit->skipped_test_count() == unit->test_to_run_count())
    return 77;
  return run_all_tests_result;
}

}  // namespace switchyard::testing
