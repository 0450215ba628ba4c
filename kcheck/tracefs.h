// Counting the kernel's anon_vma and anon_vma_chain allocations with the kmem tracepoints:
// kmem_cache_alloc filtered by call site (__anon_vma_prepare, anon_vma_fork, anon_vma_clone)
// and kmem_cache_free (unlink_anon_vmas, __put_anon_vma), restricted to the scenario's
// processes and what they fork (set_event_pid + event-fork). Call sites, not cache names:
// anon_vma's cache keeps its name, but anon_vma_chain's is merged with other 64-byte caches
// (on Linux 6.18 even the tracepoint's name= field reports the merged cache), so every other
// object these call sites allocate or free is an AVC.
#pragma once

#include <cstdint>
#include <set>
#include <string>

#include "rmapkit/scenario/report.h"

namespace rmapkit::kcheck {

/// A private tracefs instance (instances/rmapkit-PID) set up for the counting; removed
/// again, with tracefs unmounted if it mounted it, when it goes (also when its setup
/// fails). Nothing global is touched: other tracing users keep their buffers and settings.
class kmem_tracer {
 public:
  kmem_tracer();
  ~kmem_tracer();
  kmem_tracer(const kmem_tracer&) = delete;
  kmem_tracer& operator=(const kmem_tracer&) = delete;

  /// Traces @pid from now on, and every process it forks. Nothing is recorded before the
  /// first call: the runner itself is never traced (its own forks, for spawning agents,
  /// depend on how much memory it happens to use).
  void follow(int pid);
  /// Stops tracing and counts what was recorded; throws when events were lost.
  [[nodiscard]] scenario::kmem_counts read();
  /// After read(): whether process @pid freed anything. A process frees its anon_vma
  /// chains as it exits, unless another process held its address space at that moment (a
  /// reader of /proc/PID such as ps): then that one tears it down later, untraced, and the
  /// counts miss those frees (and the next fork may not reuse what it would have).
  [[nodiscard]] bool freed_any(int pid) const { return _freers.count(pid) != 0; }

 private:
  void set(const std::string& file, const std::string& value);
  void remove();
  std::string _dir;
  bool _mounted = false, _created = false;
  std::set<int> _freers;  // the pids of read()'s free events
};

/// Removes the instances of runs that were killed before they could (their pid is gone),
/// and unmounts tracefs when such a run had mounted it.
void remove_stale_trace_instances();
/// Whether a dead run left a trace instance or a tracefs mount.
[[nodiscard]] bool stale_trace_instances_exist();

}  // namespace rmapkit::kcheck
