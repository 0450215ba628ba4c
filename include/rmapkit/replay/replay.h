// Replaying a trace on the model: each event becomes the system call or fault it records,
// on an mm::machine, with tasks mapped to mms as the kernel maps them (fork copies,
// CLONE_VM shares, exec replaces). Snapshots of the machine are taken in the trace's own
// terms, and compared with the ones a trace carries.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "rmapkit/mm/machine.h"
#include "rmapkit/replay/rtrace.h"

namespace rmapkit::replay {

/// An event that cannot be replayed because the trace contradicts itself (a task that does
/// not exist, a file never declared): the message names the event and the reason.
struct replay_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct replay_options {
  std::string design = "linux-6";  ///< the anonymous rmap design (mm::anon_rmap_designs())
  /// The model's VM_BUG_ONs after every event (slow: each check reads the whole machine);
  /// replay_trace() checks them at every snapshot record and at the end in any case.
  bool check_invariants = false;
};

/// What a replay did, by event name: applied, refused by the model (a divergence: the
/// kernel did it), or not supported by the model yet (counted, never dropped silently).
struct replay_stats {
  std::uint64_t events = 0;
  std::map<std::string, std::uint64_t> applied, refused, unsupported;
  std::vector<std::string> first_refusals;  ///< the first few refusals, worded
  std::uint64_t lost = 0;                   ///< events the recorder said it lost
  std::optional<ev_kmem> kernel_kmem;       ///< the kernel's anon_vma/AVC counts, when the trace has them
};

/// Streams records into a machine. Owns the machine; tasks and files are the trace's.
class replayer {
 public:
  explicit replayer(replay_options opts = {});
  ~replayer();
  replayer(const replayer&) = delete;
  replayer& operator=(const replayer&) = delete;

  /// Applies one record. Snapshots are not applied (the caller compares them, take()).
  /// Throws replay_error when the trace contradicts itself, std::logic_error on a model bug.
  void apply(const record& r);

  /// Checks every invariant of the model now; throws std::logic_error naming the broken one.
  void check_invariants() const;

  /// The tree's memory now, as a recorder would snapshot the kernel's.
  [[nodiscard]] ev_snapshot take(std::string label) const;

  [[nodiscard]] const replay_stats& stats() const { return _stats; }
  /// The mm task @tid runs in now; null for a task the trace has not created or that exited.
  [[nodiscard]] const mm::mm_struct* task_mm(tid_t tid) const {
    auto it = _tasks.find(tid);
    return it == _tasks.end() ? nullptr : it->second.mm;
  }
  [[nodiscard]] mm::machine& machine() { return *_m; }
  [[nodiscard]] const mm::machine& machine() const { return *_m; }

 private:
  struct task {
    mm::mm_struct* mm = nullptr;
  };
  mm::mm_struct& mm_of(tid_t tid, std::string_view what);
  void drop_task(tid_t tid);
  void apply_event(const event& e);
  void count(std::string_view name, int result, std::string_view what);
  void unsupported(std::string what);
  std::uint64_t content_of(const ev_fault& f);

  void on(const ev_file& e);
  void on(const ev_exec& e);
  void on(const ev_fork& e);
  void on(const ev_clone_vm& e);
  void on(const ev_exit& e);
  void on(const ev_map& e);
  void on(const ev_unmap& e);
  void on(const ev_protect& e);
  void on(const ev_mremap& e);
  void on(const ev_brk& e);
  void on(const ev_advise& e);
  void on(const ev_lock& e);
  void on(const ev_lock_all& e);
  void on(const ev_fault& e);
  void on(const ev_clear_refs& e);
  void on(const ev_inject& e);
  void on(const ev_lost& e);
  void on(const ev_snapshot&) {}
  void on(const ev_kmem& e) { _stats.kernel_kmem = e; }

  replay_options _opts;
  std::unique_ptr<mm::machine> _m;
  std::map<tid_t, task> _tasks;
  std::unordered_map<mm::mm_struct*, std::uint32_t> _users;  // tasks per mm
  std::map<std::uint32_t, mm::address_space*> _files;
  std::unordered_map<const mm::address_space*, std::uint32_t> _file_ids;
  replay_stats _stats;
  std::uint64_t _writes = 0;  // a unique content for each write whose value is unknown
};

/// The snapshot of a machine's address spaces: @tasks names each by a tid (an mm named
/// twice is listed under its lowest tid), @file_ids each file by its id in the trace.
[[nodiscard]] ev_snapshot snapshot_of(const mm::machine& m, const std::map<tid_t, const mm::mm_struct*>& tasks,
                                      const std::unordered_map<const mm::address_space*, std::uint32_t>& file_ids,
                                      std::string label);

/// One difference between a snapshot the trace carries and the replay's.
struct difference {
  std::string cause;  ///< vma, page-missing, page-extra, page-state, sharing, anon-exclusive, process
  std::string text;   ///< worded for a person: the process, the address, both sides
};

/// Compares the replay's snapshot @got with the trace's @want. Frames are compared by their
/// sharing partition (which PTEs map the same frame), never by number; swap entries too.
[[nodiscard]] std::vector<difference> compare(const ev_snapshot& want, const ev_snapshot& got);

/// Whether @path holds a trace (either form), by its first bytes: what `rmapkit compare`
/// takes a trace for instead of a scenario.
[[nodiscard]] bool is_trace_file(const std::string& path);

/// One design's replay of a whole trace: its time, and its rmap objects and walk work.
struct design_cost {
  std::string design;
  double seconds = 0;
  std::uint64_t events = 0;
  std::vector<mm::rmap_object_count> objects;  ///< the anonymous design's
  std::size_t per_frame_bytes = 0;             ///< bytes the design adds to each anonymous struct page
  mm::walk_stats walks;
};
/// @trace (the bytes of a trace) replayed under each of @designs; throws trace_error or
/// replay_error as replay does.
[[nodiscard]] std::vector<design_cost> compare_designs(const std::string& trace, const std::string& name,
                                                       const std::vector<std::string>& designs);

/// What `rmapkit replay` does: streams @in into a replayer; with @check, compares every
/// snapshot record; stops after the records of time <= @until. Writes a summary (and the
/// differences) to @out. Returns 0, 1 (a snapshot differs), 2 (the trace is bad), 3 (model bug).
struct replay_run_options {
  replay_options replay;
  bool check = false;
  std::optional<nsec_t> until;
  bool print_state = false;          ///< print the final state as a snapshot record
  std::size_t max_differences = 20;  ///< printed per snapshot
};
int replay_trace(std::istream& in, const std::string& name, const replay_run_options& opts, std::ostream& out,
                 std::ostream& err);

}  // namespace rmapkit::replay
