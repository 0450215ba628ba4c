// Differential campaigns (`rmapkit fuzz`, docs/fuzzing.md): for each seed of a campaign
// and each profile, generate a scenario, lint it, run it on the model and on the live kernel
// (or, model-only, under every design with the invariant checker) and compare. Every
// disagreement is minimised and saved as a case; every scenario leaves one JSON Lines
// record. Campaigns are sharded by seed, so that many machines can share one and a crashed
// shard can be run again alone; fuzz_report() merges the shards' records.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "rmapkit/kcheck/kernel.h"
#include "rmapkit/lab/minimize.h"
#include "rmapkit/model/model.h"
#include "rmapkit/scenario/profile.h"

namespace rmapkit::lab {

enum class fuzz_mode {
  kernel,      ///< model against the live kernel
  model_only,  ///< the designs against each other, invariants checked
};

enum class fuzz_outcome {
  agree,           ///< the same text on both sides (refusals included)
  differ,          ///< the model's text is not the kernel's
  designs_differ,  ///< model-only: a design's text is not the first design's
  model_bug,       ///< the model broke an invariant (model::EXIT_MODEL_BUG)
  invalid,         ///< the generator wrote a scenario that does not resolve
};

/// Every outcome, in the order records, reports and tables list them.
inline constexpr fuzz_outcome FUZZ_OUTCOMES[] = {fuzz_outcome::agree, fuzz_outcome::differ,
                                                 fuzz_outcome::designs_differ, fuzz_outcome::model_bug,
                                                 fuzz_outcome::invalid};

[[nodiscard]] std::string_view to_string(fuzz_outcome o);
[[nodiscard]] std::optional<fuzz_outcome> fuzz_outcome_of(std::string_view name);

/// The seeds of a campaign, first to last inclusive, and the share of them one shard runs:
/// seeds first+index, first+index+count, ... (seeds_of()).
struct fuzz_seeds {
  std::uint64_t first = 0, last = 99;
  unsigned shard_index = 0, shard_count = 1;
};

/// The seeds @s's shard runs, in order.
[[nodiscard]] std::vector<std::uint64_t> seeds_of(const fuzz_seeds& s);

/// One scenario of a campaign: a line of the results file.
struct fuzz_record {
  std::uint64_t seed = 0;
  std::string profile;
  fuzz_outcome outcome = fuzz_outcome::agree;
  std::string mode;    ///< "kernel" or "model-only"
  std::string design;  ///< the model's design ("all" for every design, model-only)
  unsigned statements = 0;
  bool machine_wide = false;  ///< the kernel run held the machine lock (KSM, swap, reclaim)
  double generate_ms = 0, model_ms = 0, kernel_ms = 0, minimize_ms = 0;
  std::string kernel_release;  ///< of the host that ran it (uname -r); set in model-only runs too
  std::string version;         ///< rmapkit's
  std::string signature;       ///< how it failed, the same for the same failure (empty when agree)
  std::string detail;          ///< the failure's first line
  /// The minimised case, when it failed: NAME of OUT/cases/NAME.rmap, its statements, and
  /// whether minimising stopped at its budget; whether it failed again when run once more.
  std::string case_name;
  std::size_t case_statements = 0;
  bool case_exhausted = false;
  bool case_reproduced = false;
};

[[nodiscard]] nlohmann::json to_json(const fuzz_record& r);
/// Reads a record; throws nlohmann::json::exception when a field is missing or mistyped.
[[nodiscard]] fuzz_record record_from_json(const nlohmann::json& j);

struct fuzz_options {
  fuzz_seeds seeds;
  std::vector<scenario::generator_profile> profiles;  ///< each seed runs under each
  fuzz_mode mode = fuzz_mode::kernel;
  /// The model's design: one design, or with model_only, empty for every design.
  std::string design = "linux-6";
  std::string out_dir = "fuzz-out";
  /// Start no scenario after this much wall time; the rest stay for a rerun.
  std::optional<std::chrono::seconds> time_limit;
  bool minimize = true;
  minimize_options minimizing;
  /// Passed to each kernel run (lock wait).
  kcheck::run_options kernel;
  /// Test only: the model's planted fault (model::planted_fault).
  model::planted_fault plant = model::planted_fault::none;
  /// Called after each scenario with its record (progress).
  std::function<void(const fuzz_record&)> on_record;
  /// Called before a failed scenario is minimised.
  std::function<void(const fuzz_record&)> on_minimizing;
};

struct fuzz_summary {
  std::string results_file;  ///< OUT/results[-shard-I-of-N].jsonl
  std::size_t planned = 0;   ///< scenarios of this shard (seeds × profiles)
  std::size_t resumed = 0;   ///< already in the results file from an earlier run: not run again
  std::size_t run = 0;
  std::map<fuzz_outcome, std::size_t> outcomes;
  bool out_of_time = false;  ///< time_limit stopped it before the end
  int signal = 0;            ///< a signal interrupted a kernel run: the campaign stopped there
  /// The machine lock was busy and kernel.wait_for_lock false (--no-wait): the campaign
  /// stopped there.
  bool busy = false;
  std::chrono::milliseconds wall{0};

  /// Whether every scenario run agreed, and nothing stopped the campaign.
  [[nodiscard]] bool clean() const;
};

/// Runs @opts's shard of the campaign. Throws std::runtime_error when the output folder
/// cannot be written or the kernel back end cannot run here (kcheck::missing_privileges()).
[[nodiscard]] fuzz_summary fuzz(const fuzz_options& opts);

/// The signature of a unified diff (lab::diff()'s): the kind of the first differing line
/// and the field in which it first differs, e.g. "page: excl/-" or "vma: missing in the
/// model"; for a smaps figure, its name ("smaps: Referenced"). Minimising keeps it, so that the case found fails the
/// way the original did.
[[nodiscard]] std::string diff_signature(const std::string& unified);

/// `rmapkit fuzz report`: the records of every *.jsonl file of @dirs (the last record of a
/// scenario wins, per kernel release), counted per kernel release, per profile and per
/// outcome, with every failure's case; the scenarios whose outcome differs between kernel
/// releases. Unreadable files and malformed lines go to @errors as `FILE:LINE: reason`.
[[nodiscard]] nlohmann::json fuzz_report(const std::vector<std::string>& dirs, std::vector<std::string>& errors);

/// fuzz_report()'s document as text.
[[nodiscard]] std::string format_fuzz_report(const nlohmann::json& report);

}  // namespace rmapkit::lab
