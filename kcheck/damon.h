// DAMON (mm/damon/) watches memory machine-wide, and two things it does reach a scenario.
//
// A DAMOS scheme whose action is not `stat` acts on pages behind a scenario's back. This
// project's machines run such a scheme, set up by the host: a physical-address kdamond that
// pages out cold, unmapped, non-anonymous folios. Once a run's swap file exists, that takes
// a scenario's memfd pages that no PTE maps (measured: 6 % of 100,000 fresh unmapped memfd
// pages within 15 s), and a later fault-around skips the swapped page
// (docs/scenario-format.md, "Kernel back end").
//
// Monitoring alone moves accessed bits. A physical-address kdamond samples a page by
// clearing the accessed bit of every PTE or PMD that maps it, through the reverse map, and
// when one was set it marks the folio young instead (the page-idle flags). smaps'
// `Referenced` counts a page whose entry *or* whose folio is young, so a sample that lands
// between a fork (the child's entries start old) and a check makes the child's pages
// Referenced. Measured on v2/35 (a PMD folio shared with a child whose PMD was split): 7 of
// 60 test runs differed with the host's kdamond on, 0 of 60 with it off.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace rmapkit::kcheck {

inline constexpr const char* DAMON_ADMIN_DIR = "/sys/kernel/mm/damon/admin";
/// Where a damon_guard records what it changed: DAMON_RECORD_DIR/DAMON_RECORD_PREFIX<pid>.
inline constexpr const char* DAMON_RECORD_DIR = "/tmp";
inline constexpr const char* DAMON_RECORD_PREFIX = "rmapkit-damon-";

/// What a damon_guard holds still for the length of a run.
enum class damon_hold {
  /// Every DAMOS scheme of every running kdamond does `stat` instead of its action. The
  /// change is committed online (state `commit`): the kdamond keeps running and keeps what
  /// it has learnt about the regions, which turning it off and on would throw away. For
  /// runs with a swap file.
  actions,
  /// Every running kdamond is turned off, and on again at the end: nothing samples. Turning
  /// off is synchronous (the kdamond's thread has exited when the write returns); on again
  /// starts from the sysfs parameters, and what the kdamond had learnt is lost, so only runs
  /// that print smaps figures pay it.
  monitoring,
};

/// Holds DAMON still for the length of a run (damon_hold says how), and gives back what it
/// changed at the end. What it changes is written to a record file before anything
/// changes, so that the next locked run gives it back after a run killed without cleanup
/// (restore_stale_damon()).
///
/// `commit` and `on` apply every parameter in the kdamond's sysfs directory, so they would
/// also apply edits that someone made there and did not commit; we accept that.
class damon_guard {
 public:
  explicit damon_guard(damon_hold hold, std::string admin_dir = DAMON_ADMIN_DIR,
                       std::string record_dir = DAMON_RECORD_DIR);
  ~damon_guard();
  damon_guard(const damon_guard&) = delete;
  damon_guard& operator=(const damon_guard&) = delete;

  /// The schemes that now do `stat` instead of their action.
  [[nodiscard]] std::size_t paused() const { return _held.schemes.size(); }
  /// The kdamonds now turned off.
  [[nodiscard]] std::size_t stopped() const { return _held.kdamonds.size(); }
  [[nodiscard]] const std::string& record_path() const { return _record; }

  /// A scheme whose action the guard replaced: its kdamond's and its own directory.
  struct paused_scheme {
    std::string kdamond, scheme, action;
  };
  /// What a guard changed, as its record says it: a line `KDAMOND\tSCHEME\tACTION` per
  /// paused scheme, `KDAMOND\ton` per kdamond turned off.
  struct held {
    std::vector<paused_scheme> schemes;
    std::vector<std::string> kdamonds;
    [[nodiscard]] bool empty() const { return schemes.empty() && kdamonds.empty(); }
  };

 private:
  held _held;
  std::string _record;
};

/// Gives back what runs which died without cleanup recorded in @record_dir (their pid is
/// gone): actions, and kdamonds that are still off; removes their records. Only records
/// that are our own regular files, and only their lines that name kdamonds and schemes
/// under @admin_dir, are followed. Called with the machine lock held.
void restore_stale_damon(const std::string& record_dir = DAMON_RECORD_DIR,
                         const std::string& admin_dir = DAMON_ADMIN_DIR);

}  // namespace rmapkit::kcheck
