// The parsed form of a `.rmap` scenario (docs/scenario-format.md, versions 1 and 2): one
// statement per line, names not yet resolved. See program.h for the resolved form
// that back ends execute.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace rmapkit::scenario {

/// Protections a scenario names; rx and rwx add PROT_EXEC (VM_EXEC), which keeps a VMA apart
/// from neighbours without it. New values go last: the old ones keep their numbers.
enum class prot { rw, r, none, rx, rwx };

/// The protection lets a write through (PROT_WRITE).
[[nodiscard]] constexpr bool writable(prot p) { return p == prot::rw || p == prot::rwx; }

/// madvise() advice a scenario names. New values go last: the old ones keep their numbers.
enum class advice {
  dontneed,
  mergeable,
  unmergeable,
  pageout,
  dontfork,
  dofork,
  wipeonfork,
  keeponfork,
  dontdump,    ///< VM_DONTDUMP
  dodump,      ///< clears VM_DONTDUMP
  sequential,  ///< VM_SEQ_READ (and not VM_RAND_READ): no recency from this mapping
  random,      ///< VM_RAND_READ (and not VM_SEQ_READ): no recency either
  normal,      ///< neither
  free,        ///< MADV_FREE: private anonymous pages become lazily freeable
  cold,        ///< MADV_COLD: pages only this process maps are deactivated
  willneed,    ///< MADV_WILLNEED: swapped pages of the range read into the swap cache
  remove,      ///< MADV_REMOVE: a hole punched in the file behind a shared mapping
  collapse,    ///< MADV_COLLAPSE: the range's aligned 2 MiB blocks copied into PMD-mapped folios (version 2)
};

enum class map_kind { anon_private, anon_shared, file_private, file_shared };

/// What `clear_refs` clears: the values /proc/PID/clear_refs takes (fs/proc/task_mmu.c's
/// CLEAR_REFS_ALL, CLEAR_REFS_ANON, CLEAR_REFS_MAPPED). A VMA with a file behind it, shmem
/// included, is `file`; private anonymous memory is `anon`.
enum class clear_refs_type : std::uint8_t { all = 1, anon = 2, file = 3 };

/// `R`, `R[i]` or `R[i:j]`; pages [first, last) once resolved against the region size.
struct range_ref {
  std::string region;
  std::optional<std::uint64_t> first;  ///< absent: the whole region
  std::optional<std::uint64_t> last;   ///< exclusive; absent with first present: one page
};

// One statement a line, read as a table (clang-format would spread them over a hundred lines).
// clang-format off
struct st_spawn { std::string proc; };
struct st_file { std::string file; std::uint64_t pages = 0; };
struct st_mmap {
  std::string proc, region;
  /// `mmap R[i:j] ...`: a MAP_FIXED mapping of pages [i, j) of the existing region R, which
  /// replaces what is there and may grow R; absent for a new region (`mmap R ... pages=N`).
  std::optional<range_ref> into;
  map_kind kind = map_kind::anon_private;
  std::string file;  ///< for file kinds
  std::uint64_t pages = 0;
  std::uint64_t offset = 0;
  enum prot prot = prot::rw;
  bool noreserve = false;  ///< the flag word `noreserve`: MAP_NORESERVE
  bool huge = false;       ///< the flag word `huge` (version 2): MADV_HUGEPAGE on the new, empty mapping
};
struct st_read { std::string proc; range_ref range; };
struct st_write { std::string proc; range_ref range; std::optional<std::uint8_t> value; };
struct st_fork { std::string proc, child; };
struct st_exit { std::string proc; };
struct st_munmap { std::string proc; range_ref range; };
struct st_mprotect { std::string proc; range_ref range; enum prot prot = prot::rw; };
struct st_mremap_resize { std::string proc, region; std::uint64_t pages = 0; };
struct st_mremap_move { std::string proc, region; };
struct st_madvise { std::string proc; range_ref range; enum advice advice = advice::dontneed; };
struct st_mlock { std::string proc; range_ref range; };
struct st_munlock { std::string proc; range_ref range; };
struct st_ksm {
  bool prune = false;  ///< `ksm prune`: every stable tree search is a prune pass
};
struct st_reclaim {};
/// `thp anon=SIZES [shmem=SIZES]` (version 2): the large folio sizes of the run, as orders.
struct st_thp { std::uint16_t anon_orders = 0, shmem_orders = 0; };
/// `shrink` (version 2): the deferred-split queue of the scenario's processes is run.
struct st_shrink {};
struct st_clear_refs { std::string proc; clear_refs_type type = clear_refs_type::all; };
/// `report smaps|flags ...`: every later `check` also prints each VMA's smaps figures
/// (smaps), each frame's LRU and dirty state (flags).
struct st_report { bool smaps = false; bool flags = false; };
struct st_check { std::string label; };
// clang-format on

using statement_body = std::variant<st_spawn, st_file, st_mmap, st_read, st_write, st_fork, st_exit, st_munmap,
                                    st_mprotect, st_mremap_resize, st_mremap_move, st_madvise, st_mlock, st_munlock,
                                    st_ksm, st_reclaim, st_clear_refs, st_report, st_check, st_thp, st_shrink>;

struct statement {
  int line = 0;
  statement_body body;
  std::string text;  ///< the line as written, without its comment
};

/// A parsed scenario: its statements in file order.
struct scenario {
  std::string file;  ///< the name errors are reported under
  std::vector<statement> statements;
};

[[nodiscard]] const char* to_string(prot p);
[[nodiscard]] const char* to_string(advice a);
[[nodiscard]] const char* to_string(clear_refs_type t);

/// The large folio sizes `thp` names, smallest first, with their orders: 16k is order 2,
/// 2m (a PMD) order 9. Anonymous order 1 does not exist; shmem's 8 kB is not in the format.
struct thp_size {
  const char* name;
  unsigned order;
};
inline constexpr thp_size THP_SIZES[] = {{"16k", 2},  {"32k", 3},  {"64k", 4}, {"128k", 5},
                                         {"256k", 6}, {"512k", 7}, {"1m", 8},  {"2m", 9}};
/// The PMD order on x86-64: a 2 MiB folio mapped by one PMD entry.
inline constexpr unsigned PMD_ORDER = 9;
/// "64k,2m" for a set of orders (bit o = order o), "none" for the empty set.
[[nodiscard]] std::string thp_sizes_text(std::uint16_t orders);

}  // namespace rmapkit::scenario
