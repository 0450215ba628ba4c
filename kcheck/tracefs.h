// Counting the kernel's anon_vma and anon_vma_chain allocations with the kmem tracepoints:
// kmem_cache_alloc filtered by call site (__anon_vma_prepare, anon_vma_fork, anon_vma_clone)
// and kmem_cache_free (unlink_anon_vmas, __put_anon_vma), restricted to the scenario's
// processes and what they fork (set_event_pid + event-fork). Call sites, not cache names:
// anon_vma's cache keeps its name, but anon_vma_chain's is merged with other 64-byte caches
// (on Linux 6.18 even the tracepoint's name= field reports the merged cache), so every other
// object these call sites allocate or free is an AVC.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "kcheck/fd.h"
#include "rmapkit/scenario/report.h"

namespace rmapkit::kcheck {

/// A private tracefs instance (instances/rmapkit-PID), its events off and tracing stopped
/// until the owner enables what it wants; removed again, with tracefs unmounted if it
/// mounted it, when it goes (also when its setup fails). Nothing global is touched: other
/// tracing users keep their buffers and settings. One per run.
class trace_instance {
 public:
  trace_instance();
  ~trace_instance();
  trace_instance(const trace_instance&) = delete;
  trace_instance& operator=(const trace_instance&) = delete;

  /// Writes @value to the instance's @file (relative to it); throws naming both on failure.
  void set(const std::string& file, const std::string& value);
  /// Whether the instance has @file (an event the kernel may lack).
  [[nodiscard]] bool has(const std::string& file) const;
  /// Traces @pid from now on, and every process it forks.
  void follow(int pid);
  /// Stops tracing; throws when the ring buffer lost events.
  void stop_and_check_lost(std::string_view what);
  /// Enables the event in @event_dir (as "events/kmem/kmem_cache_alloc"), with @filter
  /// when one is given; it is disabled again when the instance goes.
  void enable(const std::string& event_dir, const std::string& filter = {});
  [[nodiscard]] const std::string& dir() const { return _dir; }

 private:
  void remove();
  std::string _dir;
  std::vector<std::string> _enabled;  // event directories to disable on removal
  bool _mounted = false, _created = false;
};

/// Counts anon_vma and anon_vma_chain allocations (see the top of this file).
class kmem_tracer {
 public:
  kmem_tracer();

  /// Traces @pid from now on, and every process it forks. Nothing is recorded before the
  /// first call: the runner itself is never traced (its own forks, for spawning agents,
  /// depend on how much memory it happens to use).
  void follow(int pid) { _trace.follow(pid); }
  /// Stops tracing and counts what was recorded; throws when events were lost.
  [[nodiscard]] scenario::kmem_counts read();
  /// After read(): whether process @pid freed anything. A process frees its anon_vma
  /// chains as it exits, unless another process held its address space at that moment (a
  /// reader of /proc/PID such as ps): then that one tears it down later, untraced, and the
  /// counts miss those frees (and the next fork may not reuse what it would have).
  [[nodiscard]] bool freed_any(int pid) const { return _freers.count(pid) != 0; }

 private:
  trace_instance _trace;
  std::set<int> _freers;  // the pids of read()'s free events
};

/// The kernel's own time for a statement, from its tracepoints (`rmapkit bench
/// --kernel-share`). What the agents time includes the C library's wrapper and the way in
/// and out of the kernel; the controller's time for `exit` includes the whole process's
/// exit, the wake-up and the reap. This measures the kernel's work alone:
/// - a system call statement (mmap, munmap, mprotect, madvise, mremap, mlock, munlock,
///   fork): the time between raw_syscalls:sys_enter and sys_exit of that call, in the
///   process that made it;
/// - `exit`: exit_mmap(), from the exiting process's mmap_lock tracepoints. On Linux 6.18
///   exit_mmap() read-locks the mm to unmap every VMA, then write-locks it to free the
///   page tables and the VMAs, as the last lock the process takes (a probe shows
///   sched_process_exit before it): the span from that read lock's start to the write
///   lock's release;
/// - nothing for the others: a fault has an entry tracepoint but no exit one, so a
///   `write` or `read` has no share to measure.
/// Timestamps come from trace_clock "mono" (CLOCK_MONOTONIC, as std::chrono::steady_clock),
/// printed in microseconds: each span is known to a microsecond, the error unbiased.
class time_tracer {
 public:
  time_tracer();
  /// As kmem_tracer::follow().
  void follow(int pid) { _trace.follow(pid); }
  /// Consumes what was recorded since the last call and returns the kernel's time for a
  /// statement of @kind that ran from @start to @end (CLOCK_MONOTONIC); nothing for a kind
  /// it cannot measure, or when no span of the statement was recorded.
  [[nodiscard]] std::optional<std::chrono::nanoseconds> take(std::string_view kind, std::chrono::nanoseconds start,
                                                             std::chrono::nanoseconds end);
  /// The system call numbers (<sys/syscall.h>) of a statement kind; empty for `exit` and
  /// the kinds with no share.
  [[nodiscard]] static std::vector<int> syscalls_of(std::string_view kind);
  /// Whether take() can measure @kind.
  [[nodiscard]] static bool measures(std::string_view kind) { return kind == "exit" || !syscalls_of(kind).empty(); }
  /// Stops tracing; throws when events were lost (a span would be missing).
  void stop() { _trace.stop_and_check_lost("syscall and mmap_lock"); }

 private:
  trace_instance _trace;
  unique_fd _pipe;       // the instance's trace_pipe, non-blocking: take() reads what is there
  std::string _pending;  // an incomplete last line of the previous read
};

/// The spans a time_tracer reads from trace lines (public for its tests).
struct trace_spans {
  /// Each system call of @syscalls that entered and returned: its duration.
  std::vector<std::chrono::nanoseconds> syscalls;
  /// Each exit_mmap() seen whole.
  std::vector<std::chrono::nanoseconds> exit_mmaps;
};
/// Parses @text (lines of a tracefs instance's trace, trace_clock mono) and returns the
/// spans that lie wholly within [@start, @end]; @syscalls selects the system calls.
[[nodiscard]] trace_spans parse_trace_spans(std::string_view text, const std::vector<int>& syscalls,
                                            std::chrono::nanoseconds start, std::chrono::nanoseconds end);

/// Removes the instances of runs that were killed before they could (their pid is gone),
/// and unmounts tracefs when such a run had mounted it.
void remove_stale_trace_instances();
/// Whether a dead run left a trace instance or a tracefs mount.
[[nodiscard]] bool stale_trace_instances_exist();

}  // namespace rmapkit::kcheck
