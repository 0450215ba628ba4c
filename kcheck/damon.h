// DAMON (mm/damon/) watches memory machine-wide, and a DAMOS scheme whose action is not
// `stat` acts on pages behind a scenario's back. This project's machines run such a
// scheme, set up by the host: a physical-address kdamond that pages out cold, unmapped,
// non-anonymous folios. Once a run's swap file exists, that takes a scenario's memfd pages
// that no PTE maps (measured: 6 % of 100,000 fresh unmapped memfd pages within 15 s), and
// a later fault-around skips the swapped page (docs/scenario-format.md, "Kernel back end").
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace rmapkit::kcheck {

inline constexpr const char* DAMON_ADMIN_DIR = "/sys/kernel/mm/damon/admin";
/// Where a damon_guard records what it changed: DAMON_RECORD_DIR/DAMON_RECORD_PREFIX<pid>.
inline constexpr const char* DAMON_RECORD_DIR = "/tmp";
inline constexpr const char* DAMON_RECORD_PREFIX = "rmapkit-damon-";

/// For the length of a run, every DAMOS scheme of every running kdamond does `stat`
/// instead of its action. The change is committed online (state `commit`): the kdamond
/// keeps running and keeps what it has learnt about the regions, which turning it off and
/// on would throw away. The actions go back, committed again, at the end. They are written
/// to a record file before anything changes, so that the next locked run gives them back
/// after a run killed without cleanup (restore_stale_damon()).
///
/// `commit` applies every parameter in the kdamond's sysfs directory, so it would also
/// apply edits that someone made there and did not commit; we accept that.
class damon_guard {
 public:
  explicit damon_guard(std::string admin_dir = DAMON_ADMIN_DIR, std::string record_dir = DAMON_RECORD_DIR);
  ~damon_guard();
  damon_guard(const damon_guard&) = delete;
  damon_guard& operator=(const damon_guard&) = delete;

  /// The schemes that now do `stat` instead of their action.
  [[nodiscard]] std::size_t paused() const { return _paused.size(); }
  [[nodiscard]] const std::string& record_path() const { return _record; }

  /// A scheme whose action the guard replaced: its kdamond's and its own directory.
  struct paused_scheme {
    std::string kdamond, scheme, action;
  };

 private:
  std::vector<paused_scheme> _paused;
  std::string _record;
};

/// Gives back the actions that runs which died without cleanup recorded in @record_dir
/// (their pid is gone), and removes their records. Only records that are our own regular
/// files, and only their lines that name schemes under @admin_dir, are followed. Called
/// with the machine lock held.
void restore_stale_damon(const std::string& record_dir = DAMON_RECORD_DIR,
                         const std::string& admin_dir = DAMON_ADMIN_DIR);

}  // namespace rmapkit::kcheck
