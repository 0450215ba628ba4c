// The resolved form of a scenario that back ends execute: every name replaced by an
// entity id, every range by addresses, every rule of the format that the scenario's own
// history decides already checked. What only the running memory manager can decide
// (is a region one VMA? is a page a KSM page? does the kernel refuse?) is left to the
// back end, which reports it through statement_error.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <tl/expected.hpp>

#include "rmapkit/scenario/ast.h"
#include "rmapkit/scenario/diag.h"
#include "rmapkit/types.h"

namespace rmapkit::scenario {

/// Slot placement (docs/scenario-format.md, "Placement"): slot s starts at SLOT_BASE + s * SLOT_SIZE.
inline constexpr std::uint64_t SLOT_BASE = 0x100000000000ULL;
inline constexpr std::uint64_t SLOT_SIZE = 0x40000000ULL;
/// One page short of a slot: a full-size region would touch the next slot and merge.
inline constexpr std::uint64_t MAX_REGION_PAGES = SLOT_SIZE / PAGE_SIZE - 1;
/// Bound on a file's size, so a typo cannot ask for terabytes of page cache.
inline constexpr std::uint64_t MAX_FILE_PAGES = std::uint64_t{1} << 22;

/// mmap's end, offset + pages, must stay below this: the kernel's largest file offset is
/// 2^63 - 1 bytes (MAX_LFS_FILESIZE on 64-bit), and it refuses a mapping beyond it (EOVERFLOW).
inline constexpr std::uint64_t MAX_FILE_OFFSET_PAGES = (std::uint64_t{1} << 63) / PAGE_SIZE;

/// memfd_create() refuses a name longer than 249 bytes (EINVAL); the kernel runner names a
/// file's memfd "rmapf_" and the file's name.
inline constexpr std::uint64_t MAX_FILE_NAME_BYTES = 249 - 6;
/// Processes alive at once: the kernel's default pid_max is 32,768 on a small machine, shared
/// with every other process, and fork fails with EAGAIN beyond it.
inline constexpr std::uint64_t MAX_LIVE_PROCESSES = 16384;
/// VMAs in one process: the kernel's default vm.max_map_count is 65,530 (mmap, mprotect and
/// munmap fail with ENOMEM beyond it), and the kernel runner's own process uses some.
inline constexpr std::uint64_t MAX_PROCESS_VMAS = 65000;

/// Slots end below 0x555555554000 (85.3 TiB), where x86-64 loads a position-independent
/// executable such as the kernel runner's agent (two thirds of the 128 TiB user address
/// space, randomised up to 1 TiB higher; a slot there fails with EEXIST), and so clear of
/// the libraries and the stack near 128 TiB too.
inline constexpr std::uint64_t MAX_SLOTS = (0x555555554000ULL - SLOT_BASE) / SLOT_SIZE;

constexpr vaddr_t slot_start(std::uint64_t slot) { return vaddr_t{SLOT_BASE + slot * SLOT_SIZE}; }

using proc_id = std::uint32_t;
using file_id = std::uint32_t;

/// A run of pages of one region: @pages pages from @start; @index is the region page
/// index of @start (what `write` content and error messages are keyed on).
struct page_span {
  vaddr_t start;
  std::uint64_t pages = 0;
  std::uint64_t index = 0;
};

// One operation a line, read as a table (clang-format would spread them over a hundred lines).
// clang-format off
struct op_spawn { proc_id proc; };
struct op_file { file_id file; std::uint64_t pages; };
struct op_mmap {
  proc_id proc;
  vaddr_t base;  ///< the region's base; the mapping starts at page @index of it
  map_kind kind;
  std::optional<file_id> file;
  std::uint64_t pages;
  std::uint64_t offset;
  enum prot prot;
  std::string region;  ///< the region's name, for tools that show the state by name
  std::uint64_t index = 0;  ///< the region page the mapping starts at (0 for a new region)
  /// `mmap R[i:j]`: MAP_FIXED into an existing region, replacing what is mapped there;
  /// otherwise a new region in a fresh slot (MAP_FIXED_NOREPLACE).
  bool fixed = false;
  bool noreserve = false;  ///< MAP_NORESERVE
  bool huge = false;       ///< MADV_HUGEPAGE on the new mapping (else MADV_NOHUGEPAGE)
  [[nodiscard]] vaddr_t start() const { return page_addr(base, index); }
};
struct op_read { proc_id proc; page_span span; };
struct op_write { proc_id proc; page_span span; std::optional<std::uint8_t> value; };
struct op_fork { proc_id parent; proc_id child; };
struct op_exit { proc_id proc; };
struct op_munmap { proc_id proc; page_span span; };
struct op_mprotect { proc_id proc; page_span span; enum prot prot; };
struct op_mremap_resize { proc_id proc; vaddr_t base; std::uint64_t old_pages; std::uint64_t new_pages; };
struct op_mremap_move { proc_id proc; vaddr_t old_base; vaddr_t new_base; std::uint64_t pages; };
struct op_madvise { proc_id proc; page_span span; enum advice advice; };
struct op_mlock { proc_id proc; page_span span; };
struct op_munlock { proc_id proc; page_span span; };
struct op_ksm {
  bool prune = false;  ///< every stable tree search is a prune pass (stable_node_chains_prune_millisecs=0)
};
struct op_reclaim {};
/// The run's large folio sizes (bit o = order o); the first statement of a version 2 scenario
/// that maps anything comes after it, so back ends may also read them from program::thp.
struct op_thp { std::uint16_t anon_orders = 0, shmem_orders = 0; };
struct op_shrink {};
struct op_clear_refs { proc_id proc; clear_refs_type type; };
struct op_report { bool smaps; bool flags; };
// clang-format on

/// What a `check` reports: the live processes by name (byte order), each with its
/// regions by name and where they are now.
struct check_region {
  std::string name;
  vaddr_t base;
};
struct check_process {
  std::string name;
  proc_id proc;
  std::vector<check_region> regions;
};
struct op_check {
  std::string label;
  std::vector<check_process> processes;
  bool smaps = false;  ///< also each VMA's smaps figures (`report smaps` before it, or --smaps)
  bool flags = false;  ///< also each frame's LRU and dirty flags (`report flags`, or --page-flags)
};

using op_body = std::variant<op_spawn, op_file, op_mmap, op_read, op_write, op_fork, op_exit, op_munmap, op_mprotect,
                             op_mremap_resize, op_mremap_move, op_madvise, op_mlock, op_munlock, op_ksm, op_reclaim,
                             op_clear_refs, op_report, op_check, op_thp, op_shrink>;

struct op {
  int line = 0;
  op_body body;
  std::string text;  ///< the statement as written, for traces
};

/// A scenario ready to run.
struct program {
  std::string file;
  std::vector<std::string> process_names;  ///< by proc_id
  std::vector<std::string> file_names;     ///< by file_id
  std::vector<op> ops;
  /// Uses ksm, mergeable, reclaim or pageout: holds the machine-wide lock
  /// (docs/scenario-format.md, "Kernel back end").
  bool needs_machine_lock = false;
  /// Uses reclaim or pageout: needs a swap device.
  bool needs_swap = false;
  /// Uses reclaim: needs a memory cgroup around its processes.
  bool needs_reclaim = false;
  /// Uses ksm.
  bool needs_ksm = false;
  /// Uses shrink: needs a memory cgroup around its processes, whose shrinkers it runs.
  bool needs_shrink = false;
  /// A version 2 scenario (a `thp` line): its large folio sizes. Absent: no large folios.
  std::optional<op_thp> thp;
  /// Slots used: the slot area is [slot_start(0), slot_start(slot_count)).
  std::uint64_t slot_count = 0;
  /// An upper bound on the frames the scenario can allocate (pages touched, file pages).
  std::uint64_t page_bound = 0;
  /// The most pages mapped at once: every live process's regions (holes included) and
  /// every file's pages.
  std::uint64_t mapped_peak = 0;
  /// The most processes alive at once.
  std::uint64_t live_process_peak = 0;

  /// An upper bound on the frames (and swap slots) the scenario holds at once: what a swap
  /// device must comfortably hold, and what the kernel back end's memory cap counts.
  [[nodiscard]] std::uint64_t frame_bound() const { return page_bound < mapped_peak ? page_bound : mapped_peak; }
};

/// Checks every rule the scenario's own history decides and resolves names.
[[nodiscard]] tl::expected<program, diag> resolve(const scenario& sc);

/// Makes every `check` of @prog print smaps figures too, as `report smaps` on the first
/// line would (the command line's --smaps).
void report_smaps_everywhere(program& prog);
/// Makes every `check` of @prog print the page flags too, as `report flags` on the first
/// line would (the command line's --page-flags).
void report_flags_everywhere(program& prog);

/// resolve() one statement at a time, for a scenario that grows (`gen random` keeps a
/// proposed statement only when it resolves after the ones kept before it): the same
/// rules and messages, in time that grows with the live state, not with the statements
/// before. A refused statement changes nothing; the resolved ops are not kept.
class statement_checker {
 public:
  explicit statement_checker(std::string file);
  ~statement_checker();
  statement_checker(const statement_checker&) = delete;
  statement_checker& operator=(const statement_checker&) = delete;

  /// Checks @st after the statements added before it; when it resolves, it is added.
  [[nodiscard]] tl::expected<void, diag> add(const statement& st);

 private:
  struct impl;
  std::unique_ptr<impl> _impl;
};

/// The kind a statement is counted under in `bench` and `compare`: "fork", "write",
/// "mremap-move", ...
[[nodiscard]] std::string_view statement_kind(const op& o);

}  // namespace rmapkit::scenario
