// The design lab's comparison: one scenario under several anonymous rmap designs, each on
// a fresh model machine, measured side by side: the objects each design allocates (with
// their sizes in the kernel of the design's era), its rmap metadata at its peak, the work
// of its rmap walks, and what each kind of statement cost it. Optionally, the live
// kernel's own anon_vma and anon_vma_chain allocations for the same scenario, to hold the
// linux-6 design against them. `rmapkit compare` prints what compare() returns.
//
// What compare() promises:
//  - counts (objects, peaks, walk work, allocations and entries per statement kind) are
//    deterministic: the same scenario and designs give the same numbers on every run;
//    times are wall-clock measurements and vary;
//  - the designs agree (designs_agree) when every design printed the same report as the
//    first one: results never depend on the design, so a disagreement is a bug of the model;
//  - the designs run without the model's invariant checks, which would swamp the times
//    (`rmapkit run --check-invariants` and the tests check them);
//  - the kernel is used only when asked (compare_options::vs_kernel), needs root, and
//    leaves the machine as it found it.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rmapkit/mm/anon_rmap.h"
#include "rmapkit/mm/machine.h"
#include "rmapkit/scenario/program.h"
#include "rmapkit/scenario/report.h"

namespace rmapkit::lab {

/// What the statements of one kind cost a design over the whole run.
struct kind_cost {
  std::uint64_t count = 0;           ///< statements of this kind
  std::chrono::nanoseconds time{0};  ///< their summed wall time (compare(): the median of its runs)
  std::uint64_t allocated = 0;       ///< design objects allocated during them
  std::uint64_t entries = 0;         ///< rmap entries examined by walks during them
  std::uint64_t upkeep = 0;          ///< entries read to add or remove mappings during them
};

/// One design's run of the scenario.
struct design_run {
  std::string design;
  /// The model's exit status (model::run): 0, 2 (the scenario is wrong or refused), 3
  /// (an invariant broke); its report and its errors (`FILE:LINE: reason` lines).
  int exit_code = 0;
  std::string report, errors;
  /// The design's objects after the scenario's teardown, the anonymous design's then the
  /// file design's: allocated, freed and peak are final; `bytes` is one object's size in
  /// the kernel of the design's era. The peak below counts the anonymous ones only.
  std::vector<mm::rmap_object_count> objects;
  /// Work of the rmap walks over the whole run.
  mm::walk_stats walks;
  /// The kernel locks the design's rmap work took, indexed by mm::rmap_lock_class: how
  /// often, and how much of that work was done under them (mm::lock_count).
  std::array<mm::lock_count, mm::RMAP_LOCK_CLASSES> locks{};
  /// Bytes the design adds to each anonymous frame's struct page.
  std::size_t per_frame_bytes = 0;
  /// The design's rmap metadata at its peak (live objects' bytes plus per-frame bytes of
  /// the anonymous frames in use), and the anonymous frames and mappings at that moment;
  /// of equal peaks, the one with the most mappings (the bytes served most).
  std::uint64_t peak_bytes = 0, peak_frames = 0, peak_mappings = 0;
  /// Per statement kind (scenario::statement_kind()).
  std::map<std::string, kind_cost, std::less<>> kinds;
  /// Wall time of all statements: the median of the timed runs (compare_options::repeat).
  std::chrono::nanoseconds total{0};
  /// Wall time of all statements in each timed run, in run order: their spread shows how far
  /// one run's times can be trusted. Per kind, kind_cost::time is the median of the runs.
  std::vector<std::chrono::nanoseconds> totals;

  /// peak_bytes / peak_mappings; nothing when no anonymous page was ever mapped.
  [[nodiscard]] std::optional<double> bytes_per_mapping() const;
  /// walks.entries / walks.walks; nothing when no walk ran.
  [[nodiscard]] std::optional<double> entries_per_walk() const;
  /// The object of type @type ("anon_vma", ...), or nullptr when the design has none.
  [[nodiscard]] const mm::rmap_object_count* object(std::string_view type) const;
};

struct compare_options {
  /// Design names (mm::parse_design(): ANON or ANON+FILE), in the order to report them;
  /// empty: every anonymous design with the default file design.
  std::vector<std::string> designs;
  /// When not empty, each design runs once under each of these file designs
  /// (mm::file_rmap_designs()), in this order: the file part of its name is replaced.
  std::vector<std::string> file_designs{};
  /// Also count the kernel's anon_vma and anon_vma_chain allocations for the scenario
  /// (kmem tracepoints, root), minus those of its skeleton (the runner's own).
  bool vs_kernel = false;
  /// Timed runs of each design (after one unmeasured warm-up run). Counts are the same in
  /// every run (a run whose counts differ is a bug of the model); times are the median.
  unsigned repeat = 5;
  /// Told, when a kernel run must wait for another run's machine lock, who holds it
  /// (kcheck::run_options::on_lock_wait); unset: the notice is one of the errors.
  std::function<void(const std::string&)> on_lock_wait{};
  /// When set, called before each statement of each run with the statements run so far
  /// and the total the whole command will run (a progress bar).
  std::function<void(std::size_t, std::size_t)> on_progress{};
};

struct compare_result {
  /// 0; 2 when the scenario is wrong or refused (by the model or the kernel), or the
  /// kernel is unavailable; 3 (model::EXIT_MODEL_BUG) on a bug of the model: a design
  /// failed one of its own checks, or the designs disagree. On anything but 0, `errors`
  /// (or kernel_unavailable) says why.
  int exit_code = 0;
  /// What went wrong, as lines ending in '\n' (`FILE:LINE: reason`, `FILE: reason`); with
  /// vs_kernel, also what the kernel back end reported on a run that succeeded.
  std::string errors;
  /// Set, with exit_code 2, when vs_kernel was asked and the kernel back end cannot run
  /// here: why (kcheck::missing_privileges()). Nothing then ran on the kernel.
  std::optional<std::string> kernel_unavailable;
  /// The designs in the order asked. A run stops at the first design that fails or
  /// disagrees: that design is then the last one here.
  std::vector<design_run> designs;
  /// Every design ran without error and printed the first design's report.
  bool designs_agree = false;
  /// With vs_kernel, after the designs agreed: the kernel's counts, its skeleton's
  /// subtracted.
  std::optional<scenario::kmem_counts> kernel;

  /// The run of @design, or nullptr.
  [[nodiscard]] const design_run* find(std::string_view design) const;
  /// Whether the linux-6 design allocated and freed what the kernel did; nothing when
  /// either was not measured.
  [[nodiscard]] std::optional<bool> kernel_agrees() const;
};

/// Runs @prog under each design of @opts (each on a fresh machine, after one unmeasured
/// warm-up run of the first design) and, with vs_kernel, on the kernel. Scenario errors
/// and refusals are reported in the result, never thrown; std::invalid_argument (naming
/// the known designs) when a design does not exist.
[[nodiscard]] compare_result compare(const scenario::program& prog, const compare_options& opts = {});

/// The anon_vma and anon_vma_chain counts of a design's objects (zero for a type the
/// design does not have): what the kernel's kmem tracepoints count for linux-6.
[[nodiscard]] scenario::kmem_counts model_counts(const design_run& run);

/// The same processes doing nothing: only the spawns, forks and exits of @prog, and none
/// of its machine-wide needs. Its kernel run allocates what the runner itself does.
[[nodiscard]] scenario::program skeleton(const scenario::program& prog);

/// The scenario's own share of @run, the kmem counts of a kernel run of @prog: @run minus
/// the counts of a kernel run of its skeleton, which are the runner's agents' own (exec,
/// their stacks and libraries). Nothing, with the reason in @err, when the skeleton's run
/// fails or counts more than @run did.
[[nodiscard]] std::optional<scenario::kmem_counts> kernel_scenario_share(const scenario::kmem_counts& run,
                                                                         const scenario::program& prog,
                                                                         const compare_options& opts,
                                                                         std::ostream& err);

}  // namespace rmapkit::lab
