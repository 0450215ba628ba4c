// The model back end: runs a scenario on rmapkit's model of the memory manager (mm/)
// and prints the same report the kernel back end reads from /proc.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>

#include "rmapkit/mm/machine.h"
#include "rmapkit/scenario/diag.h"
#include "rmapkit/scenario/program.h"
#include "rmapkit/scenario/report.h"

namespace rmapkit::model {

/// Whether run_options::check_invariants is on by default: true when the library was built
/// with assertions (without NDEBUG). Decided in the library, not in this header, so that
/// run_options means the same in every translation unit whatever NDEBUG is where it is
/// included.
[[nodiscard]] bool check_invariants_by_default() noexcept;

/// A fault planted in the model on purpose, to test the tools that hunt the model's faults
/// (`rmapkit fuzz` must find it and minimise it): never set but by tests.
enum class planted_fault {
  none,
  read_as_write,  ///< `read` writes: an anonymous read fault allocates instead of mapping the zero page
};

struct run_options {
  /// Check every invariant after every statement (the model's VM_BUG_ON). On by default
  /// in builds with assertions (check_invariants_by_default()).
  bool check_invariants = check_invariants_by_default();
  /// Migrate every frame of the machine after every statement (a test of migration: the
  /// reports must not change, and every invariant must still hold).
  bool migrate_everything = false;
  /// Print the machine's event counters (vmstat names) to the error stream at the end.
  bool stats = false;
  /// After every `ksm`, print the KSM counters (scenario::format(line, ksm_counters)) to
  /// the error stream.
  bool ksm_counters = false;
  /// When set (with ksm_counters), receives the counters after each `ksm`, with its line,
  /// instead of the error stream (`rmapkit diff --ksm-counters` compares them).
  std::function<void(int, const scenario::ksm_counters&)> on_ksm_counters;
  /// The anonymous reverse-map design (mm::anon_rmap_designs()); results never depend on it.
  std::string design = "linux-6";
  /// When set, called after each statement that ran without error, with its wall time
  /// (`rmapkit bench`); the clock is read only when it is set.
  std::function<void(const scenario::op&, std::chrono::nanoseconds)> on_statement;
  /// When set, receives each `check`'s report instead of the output stream (`--json`).
  std::function<void(const scenario::report_block&)> on_check;
  /// When set, called before each statement with its index in the program's ops (a
  /// progress bar).
  std::function<void(std::size_t)> before_statement;
  /// When set, called after every access a `read` or `write` makes, with whether the CPU
  /// would have faulted (the PTE did not allow it, so the fault handler ran or refused): the
  /// faults a recording of the kernel runner shows (replay::replay_scenario()).
  std::function<void(scenario::proc_id, vaddr_t, bool write, bool faulted)> on_access;
  /// Test only: the model runs with this fault (planted_fault).
  planted_fault plant = planted_fault::none;
};

/// Exit status when an invariant is broken: a bug of the model, not of the scenario.
inline constexpr int EXIT_MODEL_BUG = 3;

/// A statement asks for what the model does not model yet (a PMD-sized folio, KSM on large
/// folios, ...). The run ends as for a refused statement (exit 2, `FILE:LINE: reason`),
/// but the scenario is not wrong: `rmapkit kernel` runs it, and `diff` has nothing to
/// compare (not_modelled_in()).
class not_modelled : public scenario::statement_error {
 public:
  using scenario::statement_error::statement_error;
};

/// Runs @prog on a fresh model machine and says where and why it stops at something the
/// model does not model yet; nothing when it does not.
[[nodiscard]] std::optional<scenario::diag> not_modelled_in(const scenario::program& prog, run_options opts = {});

/// run()'s teardown check, for a machine whose processes have all exited and whose files
/// are all closed: nothing may be left but swap cache that reclaim would drop (it is
/// dropped). The leak, described; nothing when there is none.
[[nodiscard]] std::optional<std::string> teardown_leak(mm::machine& m);

/// Where a `check`'s report finds the scenario's processes and files on a machine that did
/// not run the scenario itself (a replayed trace).
struct report_source {
  /// The process's mm now; null before its spawn or fork and after its exit.
  std::function<const mm::mm_struct*(scenario::proc_id)> mm_of;
  /// The file's name as the scenario calls it (a VMA's `file:NAME@OFFSET`).
  std::function<std::string(const mm::address_space&)> file_name;
};

/// What @c prints about @m: each listed region's VMAs and PTEs, from its slot's base.
[[nodiscard]] scenario::report_block check_report(const mm::machine& m, const scenario::op_check& c,
                                                  const report_source& src);

/// Runs @prog on a fresh machine; reports to @out, errors as `FILE:LINE: reason` to @err.
/// Returns the exit status: 0, 2 (the scenario is wrong or refused), 3 (model bug).
int run(const scenario::program& prog, std::ostream& out, std::ostream& err, const run_options& opts = {});

/// The same on a machine the caller owns (tests inspect it afterwards).
int run_on(mm::machine& m, const scenario::program& prog, std::ostream& out, std::ostream& err,
           const run_options& opts = {});

}  // namespace rmapkit::model
