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

// Rank 0's report: an error on `collective` followed by `detail` (a regex), after `earliest` to
// 5 s (the timeout is 2 s), and a run that ended on its own soon after.
void expect_error_in_time(const testing::CommandResult& r, double seconds, const std::string& collective,
                          const std::string& detail, double earliest) {
  // NOTE: under --enable-recovery mpirun's own exit status does not reflect the ranks'; the
  // rank's report is what tells.
  EXPECT_NE(r.exit_code, 124) << "timeout(1) had to stop it: a hang\n" << r.output;
  EXPECT_EQ(r.output.find("rank 0: " + collective + " completed"), std::string::npos) << r.output;
  std::smatch match;
  const std::regex line("rank 0: error after ([0-9.]+) s: " + collective + R"( on mpi world \(rank 0 of 2\))" + detail);
  ASSERT_TRUE(std::regex_search(r.output, match, line)) << r.output;
  EXPECT_GE(std::stod(match[1]), earliest);
  EXPECT_LT(std::stod(match[1]), 5.0);
  EXPECT_LT(seconds, 60) << "the run must end soon after the timeout";
}

const std::string kSilentRank = R"(: rank\(s\) 1 did not answer within 2 s \(SWITCHYARD_COMM_TIMEOUT_SEC\))";

TEST(CommWatchdog, AStalledPeerIsNamedWithinTheTimeout) {
  double seconds = 0;
  auto r = launch("stall", &seconds);
  expect_error_in_time(r, seconds, "all_to_all", kSilentRank, 1.9);
}

TEST(CommWatchdog, ADeadPeerIsNamedWithinTheTimeout) {
  double seconds = 0;
  auto r = launch("exit", &seconds);
  expect_error_in_time(r, seconds, "all_to_all", kSilentRank, 1.9);
}

// MPI_Comm_split has no timeout of its own: a peer that passes split's opening barrier and then
// stalls or dies leaves the others inside MPI_Comm_split. They still fail within the timeout.
TEST(CommWatchdog, APeerStallingInsideSplitFailsTheOthersWithinTheTimeout) {
  double seconds = 0;
  auto r = launch("split-stall", &seconds);
  expect_error_in_time(r, seconds, "split",
                       R"(: MPI_Comm_split did not complete within 2 s \(SWITCHYARD_COMM_TIMEOUT_SEC\))", 1.9);
}

TEST(CommWatchdog, APeerDyingInsideSplitFailsTheOthersWithinTheTimeout) {
  double seconds = 0;
  auto r = launch("split-exit", &seconds);
  // NOTE: MPI may notice the death first and fail MPI_Comm_split sooner.
  expect_error_in_time(r, seconds, "split", "", 0.0);
}

}  // namespace
}  // namespace switchyard
