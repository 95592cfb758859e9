// A peer that stalls or dies mid-collective: the other ranks fail with a clear error within the
// configured timeout, and the run (bounded by `timeout`) never hangs.
#include <gtest/gtest.h>

#include <chrono>
#include <regex>

#include "tests/support/test_support.h"

namespace switchyard {
namespace {

// NOTE: --enable-recovery keeps mpirun from killing the job when a rank dies, so the survivors
// get to report; without it mpirun ends the job itself (also no hang).
testing::CommandResult launch(const std::string& mode, double* seconds) {
  const auto start = std::chrono::steady_clock::now();
  auto result = testing::run_command("SWITCHYARD_COMM_TIMEOUT_SEC=2 timeout 120 " + std::string(SY_MPIRUN) +
                                     " --enable-recovery -np 2 " + SY_COMM_FAULT + " " + mode);
  *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

// Rank 0's report: the collective, the silent rank and the timeout, after about 2 s.
void expect_named_within_timeout(const testing::CommandResult& r, double seconds) {
  // NOTE: under --enable-recovery mpirun's own exit status does not reflect the ranks'; the
  // rank's report is what tells.
  EXPECT_NE(r.exit_code, 124) << "timeout(1) had to stop it: a hang\n" << r.output;
  std::smatch match;
  const std::regex line(R"(rank 0: error after ([0-9.]+) s: all_to_all on mpi world \(rank 0 of 2\): rank\(s\) 1 did )"
                        R"(not answer within 2 s \(SWITCHYARD_COMM_TIMEOUT_SEC\))");
  ASSERT_TRUE(std::regex_search(r.output, match, line)) << r.output;
  EXPECT_GE(std::stod(match[1]), 1.9);
  EXPECT_LT(std::stod(match[1]), 5.0);
  EXPECT_LT(seconds, 60) << "the run must end soon after the timeout";
}

TEST(CommWatchdog, AStalledPeerIsNamedWithinTheTimeout) {
  double seconds = 0;
  auto r = launch("stall", &seconds);
  expect_named_within_timeout(r, seconds);
}

TEST(CommWatchdog, ADeadPeerIsNamedWithinTheTimeout) {
  double seconds = 0;
  auto r = launch("exit", &seconds);
  EXPECT_EQ(r.output.find("rank 0: all_to_all completed"), std::string::npos) << r.output;
  expect_named_within_timeout(r, seconds);
}

// MPI_Comm_split has no timeout of its own: a peer that passes split's opening barrier and then
// stalls or dies leaves the others inside MPI_Comm_split. They still fail within the timeout.
void expect_split_timeout(const testing::CommandResult& r, double seconds) {
  EXPECT_NE(r.exit_code, 124) << "timeout(1) had to stop it: a hang\n" << r.output;
  EXPECT_EQ(r.output.find("rank 0: split completed"), std::string::npos) << r.output;
  std::smatch match;
  const std::regex line(
      R"(rank 0: error after ([0-9.]+) s: split on mpi world \(rank 0 of 2\): MPI_Comm_split did not complete )"
      R"(within 2 s \(SWITCHYARD_COMM_TIMEOUT_SEC\))");
  ASSERT_TRUE(std::regex_search(r.output, match, line)) << r.output;
  EXPECT_GE(std::stod(match[1]), 1.9);
  EXPECT_LT(std::stod(match[1]), 5.0);
  EXPECT_LT(seconds, 60) << "the run must end soon after the timeout";
}

TEST(CommWatchdog, APeerStallingInsideSplitFailsTheOthersWithinTheTimeout) {
  double seconds = 0;
  auto r = launch("split-stall", &seconds);
  expect_split_timeout(r, seconds);
}

TEST(CommWatchdog, APeerDyingInsideSplitFailsTheOthersWithinTheTimeout) {
  double seconds = 0;
  auto r = launch("split-exit", &seconds);
  // NOTE: MPI itself may notice the death first and fail MPI_Comm_split; either way rank 0 reports
  // an error on split within the timeout and nothing hangs.
  EXPECT_NE(r.exit_code, 124) << "timeout(1) had to stop it: a hang\n" << r.output;
  std::smatch match;
  const std::regex line(R"(rank 0: error after ([0-9.]+) s: split on mpi world \(rank 0 of 2\))");
  ASSERT_TRUE(std::regex_search(r.output, match, line)) << r.output;
  EXPECT_LT(std::stod(match[1]), 5.0);
  EXPECT_LT(seconds, 60);
}

}  // namespace
}  // namespace switchyard
