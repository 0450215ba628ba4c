// The design lab's timing: the wall time of a scenario's statements per statement kind,
// on the model and (bench_options::vs_kernel) on the live kernel, over several runs.
// `rmapkit bench` prints what bench() returns.
//
// The model times each statement in its runner (model::run_options::on_statement). The
// kernel back end gives what its agents measured around the system call or page-touch
// loop of each statement, or the controller's wall time for statements no agent runs
// (spawn, file, exit: until the process is reaped, ksm, reclaim, check). The model's
// reports are not checked here: only time is measured, with invariant checks off.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "rmapkit/scenario/program.h"

namespace rmapkit::lab {

struct bench_options {
  unsigned repeat = 5;     ///< runs on each back end; at least 1
  bool vs_kernel = false;  ///< also on the kernel (root)
  /// Only on the kernel (root), not on the model: for what the model cannot run yet (a
  /// version 2 scenario: large folios). bench_result::model stays empty.
  bool kernel_only = false;
  /// With vs_kernel or kernel_only: also the kernel's own time per statement kind, from its
  /// tracepoints (kcheck::run_options::kernel_share), in bench_result::kernel_share.
  bool kernel_share = false;
  std::string design = "linux-6";  ///< the model's anonymous rmap design
  /// Told, when a kernel run must wait for another run's machine lock, who holds it
  /// (kcheck::run_options::on_lock_wait); unset: the notice is one of the errors.
  std::function<void(const std::string&)> on_lock_wait{};
  /// When set, called before each statement of each run with the statements run so far
  /// and the total the whole command will run (a progress bar).
  std::function<void(std::size_t, std::size_t)> on_progress{};
};

/// The statements of one kind, on one back end.
struct kind_samples {
  std::size_t count = 0;  ///< statements of this kind in one run
  /// Each run's summed time of these statements: one sample per run, in run order.
  std::vector<std::chrono::nanoseconds> runs;
};

/// One back end's samples.
struct back_end_samples {
  /// Per statement kind (scenario::statement_kind()).
  std::map<std::string, kind_samples, std::less<>> kinds;
  /// Each run's time over all statements: one sample per run.
  std::vector<std::chrono::nanoseconds> total;
};

struct bench_result {
  /// 0; 2 when the scenario is wrong or refused, or the kernel is unavailable; 3 on a bug
  /// of the model (model::EXIT_MODEL_BUG); a kernel run's own status (kcheck::run) when it
  /// failed. On anything but 0, `errors` (or kernel_unavailable) says why and the samples
  /// are incomplete.
  int exit_code = 0;
  /// What went wrong, as lines ending in '\n' (`FILE:LINE: reason`); also what the
  /// back ends reported on runs that succeeded.
  std::string errors;
  /// Set, with exit_code 2, when vs_kernel or kernel_only was asked and the kernel back end cannot run
  /// here: why (kcheck::missing_privileges()). Nothing then ran.
  std::optional<std::string> kernel_unavailable;
  /// The statement kinds in the order the scenario first uses them.
  std::vector<std::string> kinds;
  back_end_samples model;  ///< empty with kernel_only
  /// With vs_kernel or kernel_only.
  std::optional<back_end_samples> kernel;
  /// With kernel_share: the kernel's own time, for the kinds its tracepoints can time
  /// (kcheck::kernel_share_measures()); its total sums those kinds alone.
  std::optional<back_end_samples> kernel_share;
};

/// The median (of an even number of samples, the mean of the middle two) and the spread.
struct summary {
  std::chrono::nanoseconds median{0}, min{0}, max{0};
};

/// The summary of @samples, which must not be empty.
[[nodiscard]] summary summarize(std::span<const std::chrono::nanoseconds> samples);

/// Runs @prog opts.repeat times on the model and, with vs_kernel, as often on the kernel;
/// with kernel_only, on the kernel alone.
/// Scenario errors and refusals are reported in the result, never thrown;
/// std::invalid_argument when opts.repeat is 0, or (naming the known designs) when the
/// design does not exist.
[[nodiscard]] bench_result bench(const scenario::program& prog, const bench_options& opts = {});

}  // namespace rmapkit::lab
