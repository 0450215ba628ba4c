// Differential check of one scenario: run it on the model and on the live kernel, compare
// what each printed, and when they differ, the unified diff of the two. `rmapkit diff`
// prints what diff() returns.
//
// What is compared is each back end's outcome text: its report, followed, when it failed,
// by "error: " and its errors, so that a statement refused on one side only shows in the
// diff too, and two back ends that refuse a scenario the same way agree. With ksm_counters
// set in either's options, both print the KSM counters into the report after each `ksm`
// (`ksm line N: ...`), and those are compared too.
#pragma once

#include <chrono>
#include <string>

#include "rmapkit/kcheck/kernel.h"
#include "rmapkit/model/model.h"
#include "rmapkit/scenario/program.h"

namespace rmapkit::lab {

/// What one back end did.
struct back_end_outcome {
  int exit_code = 0;                 ///< model::run's or kcheck::run's exit status
  std::string report;                ///< what it printed: the reports of the `check`s that ran
  std::string errors;                ///< its errors (`FILE:LINE: reason` lines)
  std::chrono::nanoseconds time{0};  ///< the run's wall time

  /// The text compared: the report, and when the run failed, "error: " and the errors.
  [[nodiscard]] std::string text() const;
};

struct diff_result {
  back_end_outcome model, kernel;
  /// The signal that interrupted the kernel run (SIGINT, SIGTERM, SIGHUP, SIGPIPE), or 0.
  /// The kernel back end has undone its changes; the caller decides whether to die of it.
  /// When set, nothing was compared: agree is false and unified empty.
  int signal = 0;
  /// model.text() == kernel.text().
  bool agree = false;
  /// When they differ: a unified diff from the kernel's text to the model's, headed
  /// "--- kernel FILE" and "+++ model FILE"; empty when they agree.
  std::string unified;

  /// What `rmapkit diff` exits with: 0 when they agree, the kernel's status when both
  /// failed the same way or a signal interrupted the kernel run, 1 when they differ.
  [[nodiscard]] int exit_code() const;
};

/// A unified diff from @from_text to @to_text, headed "--- FROM_NAME" and "+++ TO_NAME";
/// empty when they are equal.
[[nodiscard]] std::string unified_diff(const std::string& from_name, const std::string& from_text,
                                       const std::string& to_name, const std::string& to_text);

/// @prog's run on the model with @opts; with opts.ksm_counters, the counters are written
/// into the report where each `ksm` ran, as diff() compares them.
[[nodiscard]] back_end_outcome run_model(const scenario::program& prog, model::run_options opts);

/// Runs @prog on the model with @mopts, then on the kernel with @kopts, and compares.
/// The kernel back end needs root (kcheck::missing_privileges()); without it, its run
/// fails and reports why, which shows as a difference. Nothing is thrown for scenario
/// errors or refusals: they are part of the outcomes.
[[nodiscard]] diff_result diff(const scenario::program& prog, const model::run_options& mopts = {},
                               const kcheck::run_options& kopts = {});

}  // namespace rmapkit::lab
