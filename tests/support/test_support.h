// Helpers shared by the test suites: temporary directories, running the CLI, env overrides.
#pragma once

#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace switchyard {
class Context;
}

namespace switchyard::testing {

/// A context of one CPU thread (and its own cache): its CPU GEMMs run one block of the grid per
/// batch, so one block covers all of a batch's rows.
Context& one_thread_context();

/// A fresh directory under $TMPDIR, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

/// Runs a shell command line and captures its output.
CommandResult run_command(const std::string& command);
/// The path of the built `switchyard` binary ($SY_TEST_SWITCHYARD_BIN, set by CTest, else this build's).
std::string switchyard_bin();
/// The source tree ($SY_TEST_SOURCE_DIR, set by CTest).
std::string source_dir();

/// Sets an environment variable for the scope, restoring the old value after.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, const char* value);
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;
  ~ScopedEnv();

 private:
  std::string name_;
  bool had_ = false;
  std::string old_;
};

/// ||got - want|| / ||want|| (infinite when the sizes differ): low-precision rounding spreads
/// over many elements, and a few tokens routed differently near a score tie move the norm only a little.
double relative_error(const std::vector<double>& got, const std::vector<double>& want);

/// n values drawn from N(0, 1), converted to T.
template <typename T>
std::vector<T> random_normal(std::mt19937& rng, size_t n) {
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(normal(rng));
  return v;
}

}  // namespace switchyard::testing
