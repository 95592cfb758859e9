// main() for GPU test binaries: exits 77 when every test skipped (tests/support/gtest_exit.h).
#include <gtest/gtest.h>

#include "tests/support/gtest_exit.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  return switchyard::testing::exit_status(RUN_ALL_TESTS());
}
