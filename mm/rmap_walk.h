// Internal to the mm library (not installed): the one implementation of what an rmap
// walk does with each candidate VMA, the protocol of struct rmap_walk_control
// (include/linux/rmap.h). Every walk goes through it: rmap_walk_anon() and
// rmap_walk_file() (rmap.cc), rmap_walk_ksm() (ksm.cc) and every historical design's
// walk (designs/). The walks differ only in how they find candidates; a candidate is
// then handled identically, so the design lab compares candidate sets, never protocols.
#pragma once

#include <optional>
#include <stdexcept>

#include "rmapkit/mm/machine.h"

namespace rmapkit::mm {

/// Handles one candidate VMA already known to map @f's page at @addr (an interval-tree
/// hit, KSM's rmap_item->address, a PTE a chain recorded): skip it if the walker's
/// invalid_vma() says so, else count it and call rmap_one(). False when the walk must
/// stop: rmap_one() asked to, or done() says the walk has nothing left to do.
[[nodiscard]] inline bool rmap_visit(walk_stats& stats, folio& f, vm_area_struct& vma, vaddr_t addr,
                                     const rmap_walk_control& rwc) {
  if (rwc.invalid_vma && rwc.invalid_vma(vma)) return true;
  stats.vmas_visited++;
  if (!rwc.rmap_one(f, vma, addr)) return false;
  return !(rwc.done && rwc.done(f));
}

/// How a walk found its candidate VMAs, which decides what a candidate whose range
/// does not cover the page means.
enum class rmap_candidates {
  /// An interval-tree query on the page's offset: every hit covers it, so one that does
  /// not is a corrupted tree (std::logic_error).
  cover_the_page,
  /// A list of every VMA that ever shared the anon_vma (2.6.7's family list, 2.6.34's
  /// AVC list): a VMA whose range misses the page is skipped cheaply, as those kernels
  /// skipped it after vma_address().
  may_miss_the_page,
};

/// Handles one candidate VMA at vma_address() of @f's page, then as the form above.
[[nodiscard]] inline bool rmap_visit(walk_stats& stats, folio& f, vm_area_struct& vma, rmap_candidates from,
                                     const rmap_walk_control& rwc) {
  const std::optional<vaddr_t> addr = machine::vma_address(vma, f.index);
  if (!addr) {
    if (from == rmap_candidates::cover_the_page) throw std::logic_error("rmap walk: interval tree hit outside the VMA");
    return true;
  }
  return rmap_visit(stats, f, vma, *addr, rwc);
}

}  // namespace rmapkit::mm
