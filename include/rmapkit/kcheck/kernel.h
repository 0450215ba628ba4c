// The kernel back end: runs a scenario with real processes on the live kernel of this
// machine and reads the report from /proc (spec: "Kernel back end notes").
#pragma once

#include <iosfwd>
#include <optional>
#include <string>

#include "rmapkit/scenario/program.h"

namespace rmapkit::kcheck {

struct run_options {
  /// Print each statement to the error stream before it runs.
  bool trace = false;
  /// Where the runner's temporary swap file goes: a file system that supports swap files.
  std::string swap_dir = "/var/tmp";
  /// After every `ksm`, print /sys/kernel/mm/ksm's counters (scenario::format(line,
  /// ksm_counters)) to the error stream.
  bool ksm_counters = false;
};

/// Exit status of a run that a signal interrupted: 128 + the signal, as a shell reports it.
struct run_result {
  int exit_code = 0;
  int signal = 0;  ///< the signal that interrupted the run, or 0
};

/// What this machine lacks for the kernel back end (not root, /proc files unreadable),
/// as one line; nothing when it has everything.
[[nodiscard]] std::optional<std::string> missing_privileges();

/// Runs @prog: reports go to @out as each `check` runs, errors to @err as `FILE:LINE: reason`.
/// Everything the run changed on the machine (processes, KSM knobs, memory cgroup, swap
/// file, lock) is undone before it returns, also on error and on SIGINT, SIGTERM, SIGHUP,
/// SIGPIPE.
[[nodiscard]] run_result run(const scenario::program& prog, std::ostream& out, std::ostream& err,
                             const run_options& opts = {});

}  // namespace rmapkit::kcheck
