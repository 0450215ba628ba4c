// The `.rtrace` format (docs/rtrace.md): what a process tree did to memory, by address —
// tasks, mappings, faults — with snapshots of the kernel's state to check a replay
// against. A trace has a text form, for tests and for reading, and a binary one for size;
// reader takes either, writer writes either, and the two hold the same records.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "rmapkit/types.h"

namespace rmapkit::replay {

inline constexpr unsigned RTRACE_VERSION = 1;

/// A malformed or unreadable trace: the message names the place (`FILE:LINE:` in text,
/// `FILE: byte N:` in binary) and the reason.
struct trace_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

using tid_t = std::uint32_t;
using nsec_t = std::uint64_t;

/// Who recorded the trace, and where.
struct header {
  std::string kernel = "model";  ///< the recording machine's release (uname -r), or "model"
  std::uint64_t page_size = PAGE_SIZE;
  std::string recorder;  ///< the program and version that wrote the trace
  bool operator==(const header&) const = default;
};

/// A mapping's permissions as /proc/PID/maps prints them (`rw-p`): prot bits and sharing.
struct perms {
  bool read = false, write = false, exec = false, shared = false;
  bool operator==(const perms&) const = default;
};
[[nodiscard]] std::string to_string(const perms& p);
[[nodiscard]] std::optional<perms> parse_perms(std::string_view s);

// ---- events --------------------------------------------------------------------------------

/// A file the tree maps: its id in the trace, its size (i_size in pages) and a name.
struct ev_file {
  std::uint32_t id = 0;
  std::uint64_t pages = 0;
  std::string name;
  bool operator==(const ev_file&) const = default;
};
/// @tid starts a new program: a fresh mm (the first event of a tree's root, or execve).
struct ev_exec {
  tid_t tid = 0;
  bool operator==(const ev_exec&) const = default;
};
/// @parent forked @child: a copy of its mm (clone without CLONE_VM).
struct ev_fork {
  tid_t parent = 0, child = 0;
  bool operator==(const ev_fork&) const = default;
};
/// @child shares @parent's mm (CLONE_VM: a thread, vfork, posix_spawn).
struct ev_clone_vm {
  tid_t parent = 0, child = 0;
  bool operator==(const ev_clone_vm&) const = default;
};
/// @tid exited: its mm goes with its last task.
struct ev_exit {
  tid_t tid = 0;
  bool operator==(const ev_exit&) const = default;
};
/// mmap() at @start: anonymous when no file; shared anonymous memory is shmem.
struct ev_map {
  tid_t tid = 0;
  vaddr_t start;
  std::uint64_t pages = 0;
  struct perms perms;
  std::optional<std::uint32_t> file;
  pgoff_t pgoff;
  bool fixed = false;      ///< MAP_FIXED: replaces what the range held
  bool noreserve = false;  ///< MAP_NORESERVE
  bool stack = false;      ///< MAP_STACK: VM_NOHUGEPAGE
  bool operator==(const ev_map&) const = default;
};
struct ev_unmap {
  tid_t tid = 0;
  vaddr_t start;
  std::uint64_t pages = 0;
  bool operator==(const ev_unmap&) const = default;
};
/// mprotect(); perms.shared is ignored (a mapping keeps its sharing).
struct ev_protect {
  tid_t tid = 0;
  vaddr_t start;
  std::uint64_t pages = 0;
  struct perms perms;
  bool operator==(const ev_protect&) const = default;
};
/// mremap() of [old_start, +old_pages) to [new_start, +new_pages).
struct ev_mremap {
  tid_t tid = 0;
  vaddr_t old_start;
  std::uint64_t old_pages = 0;
  vaddr_t new_start;
  std::uint64_t new_pages = 0;
  bool dontunmap = false;  ///< MREMAP_DONTUNMAP
  bool operator==(const ev_mremap&) const = default;
};
/// brk(): the program break moved from @old_end to @new_end (byte addresses; the heap VMA
/// ends at the next page boundary).
struct ev_brk {
  tid_t tid = 0;
  vaddr_t old_end, new_end;
  bool operator==(const ev_brk&) const = default;
};
/// madvise() with the advice's name without MADV_, lower case (`dontneed`, `free`, ...).
struct ev_advise {
  tid_t tid = 0;
  vaddr_t start;
  std::uint64_t pages = 0;
  std::string advice;
  bool operator==(const ev_advise&) const = default;
};
/// mlock() (lock) or munlock().
struct ev_lock {
  tid_t tid = 0;
  vaddr_t start;
  std::uint64_t pages = 0;
  bool lock = true;
  bool operator==(const ev_lock&) const = default;
};
/// mlockall() (lock, with MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT) or munlockall().
struct ev_lock_all {
  tid_t tid = 0;
  bool lock = true;
  bool current = false, future = false, onfault = false;
  bool operator==(const ev_lock_all&) const = default;
};
enum class access : std::uint8_t { read, write, exec };
/// A page fault at @addr (the page's address), from user or kernel mode. @value, when
/// known (a trace made from a scenario), is the byte a write fills the page with.
struct ev_fault {
  tid_t tid = 0;
  vaddr_t addr;
  enum access access = access::read;
  bool user = true;
  std::optional<std::uint8_t> value;
  bool operator==(const ev_fault&) const = default;
};
/// A write to /proc/TID/clear_refs: `all`, `anon` or `file`.
struct ev_clear_refs {
  tid_t tid = 0;
  std::string type;
  bool operator==(const ev_clear_refs&) const = default;
};
/// Work the machine does outside the tree's tasks: `ksm` (ksmd to a fixpoint; `ksm-prune`
/// also drops stale stable nodes) and `reclaim` (every process's accessed bits cleared, then
/// everything reclaimable reclaimed). A recording names what it saw; replay can add them.
struct ev_inject {
  std::string what;
  bool operator==(const ev_inject&) const = default;
};
/// The kernel's own count of the tree's anon_vma and anon_vma_chain allocations and frees
/// over the recording (kmem tracepoints), to compare with the replay's.
struct ev_kmem {
  std::uint64_t anon_vma_alloc = 0, anon_vma_free = 0, avc_alloc = 0, avc_free = 0;
  bool operator==(const ev_kmem&) const = default;
};
/// Events the recorder lost: the trace is incomplete from here.
struct ev_lost {
  std::uint64_t count = 0;
  bool operator==(const ev_lost&) const = default;
};

// ---- snapshots -----------------------------------------------------------------------------

enum class page_state : std::uint8_t { anon, file, zero, ksm, swap };
[[nodiscard]] std::string_view to_string(page_state s);

/// A VMA as /proc/PID/maps shows it; @file set for a file mapping, @shmem for shared
/// anonymous memory.
struct snap_vma {
  vaddr_t start, end;
  struct perms perms;
  bool shmem = false;
  std::optional<std::uint32_t> file;
  pgoff_t pgoff;
  bool operator==(const snap_vma&) const = default;
};
/// A page table entry that maps something: a frame (@frame: any number naming the frame,
/// equal for equal frames; the PFN on a recording) or a swap entry (@frame: the entry).
struct snap_page {
  vaddr_t addr;
  page_state state = page_state::anon;
  std::uint64_t frame = 0;
  bool exclusive = false;  ///< AnonExclusive
  bool operator==(const snap_page&) const = default;
};
/// One address space, under the lowest tid that uses it.
struct snap_process {
  tid_t tid = 0;
  std::vector<snap_vma> vmas;    ///< by address
  std::vector<snap_page> pages;  ///< by address
  bool operator==(const snap_process&) const = default;
};
/// The tree's memory at one moment: what replay is checked against.
struct ev_snapshot {
  std::string label;
  std::vector<snap_process> processes;  ///< by tid
  bool operator==(const ev_snapshot&) const = default;
};

using event =
    std::variant<ev_file, ev_exec, ev_fork, ev_clone_vm, ev_exit, ev_map, ev_unmap, ev_protect, ev_mremap, ev_brk,
                 ev_advise, ev_lock, ev_fault, ev_clear_refs, ev_inject, ev_lost, ev_snapshot, ev_kmem, ev_lock_all>;

/// The event's keyword in the text form (`map`, `fault`, ...).
[[nodiscard]] std::string_view event_name(const event& e);
/// The event as the text form writes it, without its time (for messages).
[[nodiscard]] std::string to_text(const event& e);

/// An event at a time: nanoseconds of CLOCK_MONOTONIC on a recording (never decreasing),
/// the statement's line in a trace made from a scenario.
struct record {
  nsec_t time = 0;
  event ev;
  bool operator==(const record&) const = default;
};

enum class encoding : std::uint8_t { text, binary };

/// Reads a trace from a stream, one record at a time; the encoding is told by its first
/// bytes. Throws trace_error on malformed input.
class reader {
 public:
  /// @name is how errors name the input (a path, or "-").
  reader(std::istream& in, std::string name);
  ~reader();
  reader(const reader&) = delete;
  reader& operator=(const reader&) = delete;

  [[nodiscard]] const header& head() const { return _header; }
  [[nodiscard]] encoding format() const { return _format; }
  /// The next record, or nothing at the end of the trace.
  std::optional<record> next();
  /// Where the last record came from, worded for an error: `FILE:LINE` or `FILE: byte N`.
  [[nodiscard]] std::string where() const;

  struct impl;

 private:
  header _header;
  encoding _format = encoding::text;
  std::unique_ptr<impl> _impl;
};

/// Writes a trace: the header first, then each record as given. Throws trace_error when a
/// record goes back in time.
class writer {
 public:
  writer(std::ostream& out, encoding format, const header& h);
  void write(const record& r);

 private:
  std::ostream& _out;
  encoding _format;
  nsec_t _last = 0;
};

}  // namespace rmapkit::replay
