// The kernel back end: runs a scenario with real processes on the live kernel of this
// machine and reads the report from /proc (docs/scenario-format.md, "Kernel back end").
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>

#include "rmapkit/scenario/program.h"
#include "rmapkit/scenario/report.h"

namespace rmapkit::kcheck {

/// The runner names scenario file F's memfd `rmapf_F`: /proc/PID/maps shows its mappings as
/// `/memfd:rmapf_F (deleted)`, which is how the report and a recording tell it.
inline constexpr std::string_view MEMFD_NAME_PREFIX = "rmapf_";

/// How long one statement took on the kernel (for `rmapkit bench`).
struct statement_timing {
  /// The controller's wall time around the statement (requests, waits, /proc reads).
  std::chrono::nanoseconds wall{0};
  /// What the agents measured around their system calls and page-touch loops, summed over
  /// the statement's requests; nothing for statements no agent times (spawn, file, exit,
  /// ksm, reclaim, check).
  std::optional<std::chrono::nanoseconds> agent;
  /// With run_options::kernel_share: the kernel's own time for the statement, from its
  /// tracepoints (the statement's system calls, entry to return; exit_mmap() for `exit`);
  /// nothing for kinds they cannot time (a fault has no exit tracepoint).
  std::optional<std::chrono::nanoseconds> kernel;
};

/// Whether run_options::kernel_share times statements of @kind (scenario::statement_kind()):
/// the system call statements, fork and exit.
[[nodiscard]] bool kernel_share_measures(std::string_view kind);

struct run_options {
  /// Print each statement to the error stream before it runs.
  bool trace = false;
  /// Where the runner's temporary swap file goes: a file system that supports swap files.
  std::string swap_dir = "/var/tmp";
  /// After every `ksm`, print /sys/kernel/mm/ksm's counters (scenario::format(line,
  /// ksm_counters)) to the error stream.
  bool ksm_counters = false;
  /// At the end, print how many anon_vma and anon_vma_chain objects the run's processes
  /// (and the runner) allocated and freed, from the kmem tracepoints (scenario::format(
  /// kmem_counts)), to the error stream. Takes the machine lock: tracing is machine-wide.
  bool kmem_counts = false;
  /// Time each statement's kernel work alone with the syscall, mmap_lock and sched
  /// tracepoints (statement_timing::kernel). Takes the machine lock: tracing is
  /// machine-wide. Not with kmem_counts (a run has one trace instance).
  bool kernel_share = false;
  /// When set (with kmem_counts), receives the counts instead of the error stream.
  std::function<void(const scenario::kmem_counts&)> on_kmem_counts;
  /// When set, called after each statement that ran without error, with its timing.
  std::function<void(const scenario::op&, const statement_timing&)> on_statement;
  /// When set, receives each `check`'s report instead of the output stream (`--json`).
  std::function<void(const scenario::report_block&)> on_check;
  /// When set (with ksm_counters), receives the counters after each `ksm`, with its line,
  /// instead of the error stream.
  std::function<void(int, const scenario::ksm_counters&)> on_ksm_counters;
  /// When set, called before each statement with its index in the program's ops (a
  /// progress bar).
  std::function<void(std::size_t)> before_statement;
  /// When another run holds the machine lock: wait for it (saying so once, through
  /// on_lock_wait or else to the error stream), or, when false (`--no-wait`), fail at once
  /// with EXIT_MACHINE_BUSY.
  bool wait_for_lock = true;
  std::function<void(const std::string&)> on_lock_wait;
  /// Run a scenario beyond the resource caps (resource_cap_exceeded()) all the same.
  bool allow_large = false;
};

/// The kernel back end's resource caps (docs/scenario-format.md, "Kernel back end"): what
/// a scenario may hold at once before the run refuses it unless run_options::allow_large.
inline constexpr std::uint64_t MAX_RUN_PAGES = 262144;    // 1 GiB: frames or swap slots
inline constexpr std::uint64_t MAX_RUN_PROCESSES = 1024;  // processes alive at once

/// Why @prog is too large to run on this machine without run_options::allow_large (its
/// memory or its processes); nothing when it is within the caps.
[[nodiscard]] std::optional<std::string> resource_cap_exceeded(const scenario::program& prog);

/// Exit status of a run that did not start because another run held the machine lock and
/// run_options::wait_for_lock was false: sysexits.h's EX_TEMPFAIL, "try again later".
inline constexpr int EXIT_MACHINE_BUSY = 75;

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
