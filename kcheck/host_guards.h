// Host guards: the machine-wide state the kernel back end borrows for a run, each piece
// owned by a guard that gives it back, also when the run fails or is interrupted: the lock
// file, the KSM knobs, a swap file, a memory cgroup, the CPU mask (and DAMON's schemes,
// damon.h). KSM and swap are machine-wide: another run's KSM scan would merge this run's
// pages and another run's swap changes would move them, so a run that needs them holds the
// machine lock, turns them on for the run only and restores the previous settings.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "kcheck/fd.h"
#include "rmapkit/scenario/report.h"

namespace rmapkit::kcheck {

/// The lock every run that uses KSM or swap (`ksm`, `mergeable`, `reclaim`, `pageout`) or
/// counts kmem tracepoints (tracing is machine-wide too) holds for its whole run, so that
/// two runs on one machine cannot disturb each other.
inline constexpr const char* MACHINE_LOCK_PATH = "/tmp/rmapkit-kernel.lock";
inline constexpr const char* KSM_DIR = "/sys/kernel/mm/ksm";

/// Called while the runner waits, so that a signal can end the wait (it throws).
using interrupt_check = std::function<void()>;

/// How a run takes the machine lock when another run holds it.
struct lock_wait {
  /// False (`--no-wait`): fail at once with lock_busy instead of waiting.
  bool wait = true;
  /// Told once, before waiting, who holds the lock: a wait can last minutes, and a silent
  /// one looks like a hang.
  std::function<void(const std::string&)> notice;
};

/// The machine lock is held by another run, and the caller asked not to wait.
class lock_busy : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// An exclusive flock on @path (MACHINE_LOCK_PATH). The holder writes who it is (pid,
/// command line, since when) into the file, so that a run that must wait can say for whom;
/// flock itself records no owner.
class machine_lock {
 public:
  explicit machine_lock(const interrupt_check& check_interrupt, const lock_wait& how = {},
                        const std::string& path = MACHINE_LOCK_PATH);
  ~machine_lock();
  machine_lock(const machine_lock&) = delete;
  machine_lock& operator=(const machine_lock&) = delete;

 private:
  /// Who holds the lock, as its holder wrote it; read while the lock is busy.
  [[nodiscard]] std::string holder() const;
  void record_holder() const;

  std::string _path;
  unique_fd _fd;
};

/// Where a ksm_guard records the knobs' values before it changed them, so that a run killed
/// with SIGKILL is undone by the next (restore_stale_ksm()): KSM_RECORD_DIR/KSM_RECORD_PREFIX<pid>.
inline constexpr const char* KSM_RECORD_DIR = "/tmp";
inline constexpr const char* KSM_RECORD_PREFIX = "rmapkit-ksm-";

/// Saves the KSM knobs, keeps ksmd stopped between `ksm` statements, and restores every
/// knob it changed. Never writes run=2 (that would unmerge every KSM page on the machine).
/// Each value is recorded on disk before the knob changes, and the record goes once the
/// knobs are back.
class ksm_guard {
 public:
  explicit ksm_guard(std::string ksm_dir = KSM_DIR, std::string record_dir = KSM_RECORD_DIR);
  ~ksm_guard();
  ksm_guard(const ksm_guard&) = delete;
  ksm_guard& operator=(const ksm_guard&) = delete;

  /// Runs ksmd until its counters stay unchanged for three full scans, then stops it.
  /// Throws statement_error when it does not settle within @timeout_s.
  /// With @prune every stable tree search is a prune pass over the chains it meets
  /// (stable_node_chains_prune_millisecs=0); without, none is (the interval is set to a
  /// day, so it never elapses within a run). Either way the result does not depend on
  /// how long the statements took.
  void run_to_fixpoint(const interrupt_check& check_interrupt, bool prune = false, int timeout_s = 120);
  /// The counters of /sys/kernel/mm/ksm (machine-wide).
  [[nodiscard]] static scenario::ksm_counters counters();

 private:
  void set(const std::string& knob, const std::string& value);
  void forget_exited_mms() noexcept;
  void free_empty_chains();
  void run_scans(int scans);
  [[nodiscard]] std::string path(const std::string& knob) const { return _dir + "/" + knob; }
  bool _ran = false;  // ksmd ran for the scenario: its mms are registered until ksmd drops them
  std::string _dir;
  std::string _record;
  std::map<std::string, std::string> _saved;  // knob -> value before the run
};

/// Gives back the knob values each run killed without cleanup recorded in @record_dir as
/// @prefix<pid> (a record whose run is dead): @write_back writes one record's values and
/// returns those it could not write, and the record goes once all are back. Throws
/// std::runtime_error, saying what to do, when a knob cannot be written back: a run must not
/// start from, and later restore, a machine left tuned. @what names the subsystem ("KSM").
void restore_stale_knobs(const std::string& record_dir, const std::string& prefix, const std::string& knob_dir,
                         const char* what,
                         const std::function<std::vector<std::string>(const std::string& record)>& write_back);

/// Gives KSM back the knobs a run killed without cleanup recorded (a record whose run is
/// dead), run last and never run=2. Throws std::runtime_error, saying what to do, when a
/// knob cannot be written back: a run must not start from, and later restore, a machine
/// left tuned.
void restore_stale_ksm(const std::string& ksm_dir = KSM_DIR, const std::string& record_dir = KSM_RECORD_DIR);

/// A temporary swap file at the highest priority, removed at the end.
class swap_guard {
 public:
  swap_guard(const std::string& dir, std::uint64_t bytes);
  ~swap_guard();
  swap_guard(const swap_guard&) = delete;
  swap_guard& operator=(const swap_guard&) = delete;

  [[nodiscard]] const std::string& path() const { return _path; }

 private:
  std::string _path;
  bool _active = false;
};

/// A cgroup-v1 memory cgroup that the runner joins (so that its files and agents are
/// charged there) and that reclaim empties. Removed at the end.
class memcg_guard {
 public:
  memcg_guard();
  ~memcg_guard();
  memcg_guard(const memcg_guard&) = delete;
  memcg_guard& operator=(const memcg_guard&) = delete;

  /// One pass of the reclaim recipe: force_empty, then a limit shrink and release.
  void reclaim_pass();
  /// Runs the cgroup's shrinkers, the deferred-split queue among them, and nothing else:
  /// force_empty with swappiness 0 scans no anonymous or shmem LRU (`shrink`).
  void shrink_pass();
  [[nodiscard]] const std::string& path() const { return _path; }

 private:
  std::string _parent, _path;
};

/// Removes what runs killed without cleanup (SIGKILL) left: their swap files in @swap_dir,
/// their memory cgroups beside ours, their tracefs instances, and the DAMON actions they
/// replaced (given back). Called with the machine lock held.
void remove_stale_leftovers(const std::string& swap_dir);
/// Whether a run killed without cleanup left a record of changed knobs (KSM, DAMON) or a
/// swap file: then even a run that needs no machine lock takes it and cleans up first.
[[nodiscard]] bool stale_leftovers_exist(const std::string& swap_dir);

/// Drains every CPU's LRU batches, so that freshly faulted pages are visible to
/// pageout and reclaim (move_pages of one of our pages to its own node does it).
void lru_drain();

/// Pins the calling process (and so every agent it forks) to one CPU, so that per-CPU
/// batching cannot hide a page from pageout or reclaim; restores the old mask at the end.
class cpu_pin_guard {
 public:
  cpu_pin_guard();
  ~cpu_pin_guard();
  cpu_pin_guard(const cpu_pin_guard&) = delete;
  cpu_pin_guard& operator=(const cpu_pin_guard&) = delete;

 private:
  std::vector<unsigned char> _saved;  // the cpu_set_t before pinning
  bool _pinned = false;
};

}  // namespace rmapkit::kcheck
