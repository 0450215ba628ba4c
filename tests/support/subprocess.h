// Runs the rmapkit executable as a user would, for tests: exit status, signal,
// standard output and standard error.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace rmapkit::testing {

struct outcome {
  int exit_code = -1;  ///< -1 when killed by a signal
  int signal = 0;
  std::string out, err;
};

/// A child process whose output goes to temporary files that can be read while it runs.
class child {
 public:
  /// Starts @argv; @before_exec runs in the child (e.g. to drop privileges).
  explicit child(const std::vector<std::string>& argv, const std::function<void()>& before_exec = {});
  ~child();
  child(const child&) = delete;
  child& operator=(const child&) = delete;

  [[nodiscard]] pid_t pid() const { return _pid; }
  [[nodiscard]] std::string err_so_far() const;
  /// Waits until standard error contains @needle; false on timeout or exit.
  bool wait_for_err(const std::string& needle, std::chrono::milliseconds timeout);
  outcome wait();

 private:
  pid_t _pid = -1;
  std::string _out_path, _err_path;
  bool _reaped = false;
  int _status = 0;
};

/// Runs @argv to completion.
outcome run(const std::vector<std::string>& argv, const std::function<void()>& before_exec = {});

/// For run()'s before_exec: when root, become nobody (uid and gid 65534), so that the child
/// meets what a user without privileges meets.
void drop_root();

/// The rmapkit executable under test.
std::string rmapkit_bin();

/// Writes @text to a fresh temporary file named @name, in a directory of its own that is
/// removed with everything in it when the test process ends, and returns its path.
std::string temp_file(const std::string& name, const std::string& text);

/// The golden corpus: the names (without .rmap) of the scenarios in @dir, sorted.
std::vector<std::string> corpus_names(const std::string& dir);

/// Reads a whole file; "" when it does not exist.
std::string slurp(const std::string& path);

}  // namespace rmapkit::testing
