// One rmap walk of one frame, step by step, as the machine's design does it: where it
// starts, the lock it takes, each candidate a tree or list gives, vma_address() with its
// numbers, what page_vma_mapped_walk() finds, what rmap_one() returns and where the walk
// stops (`rmapkit walk`). The counts at the end are the walk's walk_stats, what `rmapkit
// compare` adds up; the steps are reported where those counters count, so they agree.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "rmapkit/model/session.h"
#include "rmapkit/view/state.h"

namespace rmapkit::view {

/// What the walk does at each mapping it finds.
enum class walk_op {
  none,        ///< page_vma_mapped_walk() only: finds the mappings, changes nothing
  referenced,  ///< folio_referenced(): tests and clears the young bits
  unmap,       ///< try_to_unmap() (an anon folio first gets a swap slot, as reclaim gives it)
  mkclean,     ///< folio_mkclean(): write-protects and cleans shared file mappings
  migrate,     ///< migrate_folio(): try_to_migrate(), then remove_migration_ptes() on the new frame
};

/// "none", "referenced", ...; view_error names the choices for anything else.
[[nodiscard]] walk_op parse_walk_op(const std::string& s);
[[nodiscard]] const char* to_string(walk_op op);

/// The frame to walk: a frame id, or the page a process maps (P:REGION:IDX).
struct walk_target {
  std::optional<std::uint64_t> frame;
  std::optional<std::string> page;  ///< "P:REGION:IDX"
};

struct walk_step_view {
  std::string kind;    ///< mm::walk_step::kind's name: start, lock, query, source, entry, candidate, ...
  std::string text;    ///< the step in words, with its numbers
  std::string object;  ///< the object's id, when the step names one (av2, F, s1, anon_vma#1)
  std::string vma;     ///< the VMA's id, when the step names one
  std::optional<std::uint64_t> addr;
  std::optional<bool> ok;  ///< rmap_one's answer; for a pte step, whether it maps this frame
};

/// walk_stats of the walk (what `compare` counts), and the same counted from its steps.
struct walk_counts {
  std::uint64_t walks = 0, entries = 0, vmas_visited = 0, ptes_examined = 0, misses = 0;
  bool operator==(const walk_counts&) const = default;
};

struct walk_view {
  std::string file;
  std::size_t position = 0;
  int line = 0;
  std::string statement;
  std::string design;
  walk_op op = walk_op::none;
  std::uint64_t frame = 0;           ///< the frame's id before the walk
  std::vector<std::string> prelude;  ///< what the operation did before walking (add_to_swap)
  std::vector<walk_step_view> steps;
  walk_counts counts;  ///< the machine's counters, after minus before
  walk_counts traced;  ///< the same counted from the steps
  std::string result;  ///< what the operation returned
  state before;        ///< the frame and what its reverse map holds, before the walk
  state after;         ///< the frame (or its migrated copy) after the walk
};

/// Walks @target in @s's current state with @op, which changes the state as the
/// operation does. view_error for a target that is not a mapped or cached frame (the
/// message says what is there instead) or an operation that does not apply.
[[nodiscard]] walk_view trace_walk(model::session& s, const walk_target& target, walk_op op);

/// The walk in words; @with_after adds the frame's state after it.
[[nodiscard]] std::string format_text(const walk_view& w, bool with_after = true);

}  // namespace rmapkit::view
