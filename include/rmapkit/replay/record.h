// Recording a real program's memory behaviour as a trace (docs/rtrace.md, "Recording"):
// the command runs in a cgroup of its own; perf_event_open, system-wide with one buffer per
// CPU filtered to that cgroup, takes the tracepoints of its memory system calls, page faults
// and new tasks, with the side band (MMAP2, fork, exit, exec) that says what execve built and
// which file each mapping is. Snapshots are read from /proc while the cgroup is frozen.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "rmapkit/replay/rtrace.h"

namespace rmapkit::replay {

/// The recorder cannot run here (not root, no cgroup v2, perf refused): the message says why.
struct record_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct record_options {
  /// Freeze the tree and snapshot it every so many seconds (none: no snapshots).
  std::optional<double> check_every;
  /// Pages of each CPU's ring buffer (a power of two).
  std::size_t buffer_pages = 1024;
  /// Also count the kernel's anon_vma and anon_vma_chain allocations (kmem tracepoints in a
  /// tracefs instance of its own, kcheck::kmem_tracer), written as a `kmem` record.
  bool kmem = true;
};

struct record_stats {
  int exit_status = 0;                       ///< the command's, as a shell gives it (128+N for a signal)
  std::uint64_t samples = 0, side_band = 0;  ///< perf records read
  std::uint64_t lost = 0;                    ///< events perf lost (each is a `lost` record too)
  std::uint64_t records = 0, snapshots = 0;  ///< written to the trace
  /// Cuts not taken: the tree did not freeze in time, and /proc read from a running tree
  /// could show a task whose fork comes after the cut in the trace.
  std::uint64_t cuts_skipped = 0;
  std::map<std::string, std::uint64_t> not_traced;  ///< seen but not written, by what (mlockall, a vdso fault)
  std::uint64_t tasks = 0;                          ///< tasks of the tree
  std::optional<ev_kmem> kmem;                      ///< the kernel's counts, when taken
};

/// Why the recorder cannot run on this machine, or nothing when it can.
[[nodiscard]] std::optional<std::string> record_unavailable();

/// Runs @argv (argv[0] looked up in PATH) and writes its trace to @w; the command's standard
/// streams are this process's. Throws record_error when recording cannot start.
record_stats record_command(const std::vector<std::string>& argv, writer& w, const record_options& opts = {});

/// The trace's header on this machine.
[[nodiscard]] header recording_header();

}  // namespace rmapkit::replay
