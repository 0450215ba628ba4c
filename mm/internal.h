// Kernel: mm/internal.h: what the files of mm/ share and nobody outside sees. Never
// installed: the public header (rmapkit/mm/machine.h) only names these structs, and the
// machine holds each through a pointer. Only the files that own a struct's fields change
// them; other files call the owners' functions, and the invariant checker (debug.cc) reads
// them.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <iterator>
#include <list>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "rmapkit/mm/machine.h"

namespace rmapkit::mm {

// ---- swap: swap_map and free_slots owned by swapfile.cc, cache by swap_state.cc, content by page_io.cc

/// struct swap_info_struct (include/linux/swap.h): the one swap device, of the ordinary
/// kind, with its swap cache. Slot s (from 1; slot 0 holds the swap header) is index s - 1.
struct swap_info_struct {
  std::vector<std::uint32_t> swap_map;    ///< per slot: references from PTEs and shmem (swap_count)
  std::vector<std::uint64_t> content;     ///< per slot: what was written out (page_io.cc)
  std::vector<std::uint64_t> free_slots;  ///< free slots, reused last freed first
  std::map<std::uint64_t, pfn_t> cache;   ///< slot -> folio (SWAP_HAS_CACHE; swap_state.cc)
  /// slot -> the reclaim generation of the shadow entry reclaim left in the swap cache
  /// when it freed the slot's folio (workingset_eviction(); swap_state.cc).
  std::map<std::uint64_t, std::uint64_t> shadows;
  std::uint64_t reclaim_generation = 0;  ///< `reclaim` statements run so far
};

// ---- LRU lists (owned by swap.cc) ----------------------------------------------------------

/// One LRU list, linked through folio::lru_prev and lru_next by pfn.
struct lru_head {
  std::uint32_t first = 0, last = 0;  ///< pfns of the newest and the oldest folio; 0: empty
  std::uint64_t nr = 0;
};

/// struct lruvec (include/linux/mmzone.h): the LRU lists of the one node.
struct lruvec {
  std::array<lru_head, NR_LRU_LISTS> lists;
};

// ---- KSM (owned by ksm.cc) -------------------------------------------------------------

/// One node of the stable tree, which the kernel keys by page content: a lone stable node,
/// or (since 4.13) a chain of dups of one content, each dup holding at most
/// max_page_sharing mappings. A chain is a chain until a search collapses it: it is
/// counted in stable_node_chains even with one dup or none left.
struct ksm_tree_entry {
  std::uint64_t content = 0;
  bool chain = false;
  /// A lone node: exactly one. A chain: its dups in list order, head first, the order
  /// in which stable_node_dup() looks at them.
  std::list<std::unique_ptr<ksm_stable_node>> dups;
  interval_tree_node rb;  ///< in ksm_state::tree
};

/// The stable tree's order: the kernel compares pages byte by byte (memcmp_pages()).
/// ksm_content_cmp() compares the pages two contents stand for in that order; the key
/// below is its first byte, which orders the tree coarsely: a page filled with byte V
/// (`write value=V`) by V, every other page (a unique write, a file page: kcheck/agent.h's
/// unique_page() starts them with the bytes "!tkpamr") after V <= 0x21, before V > 0x21.
struct ksm_tree_order {
  static std::uint64_t key(std::uint64_t content) { return content <= 0xff ? 2 * content : 2 * 0x21 + 1; }
  static std::uint64_t start(const ksm_tree_entry& e) { return key(e.content); }
  static std::uint64_t last(const ksm_tree_entry& e) { return key(e.content); }
};

/// memcmp() of the pages @a and @b stand for: <0, 0 or >0. A unique page is the header,
/// the run's salt, then its two keys (statement line and page index) as little-endian
/// words, so after the header it orders by the keys' bytes, least significant first.
/// A file page's content does not carry its keys: those order among themselves by
/// content, after the unique pages (an approximation: two such KSM pages need two
/// processes' private COW copies of one file page, without a write).
int ksm_content_cmp(std::uint64_t a, std::uint64_t b);

/// ksmd's state (the file-static variables of mm/ksm.c).
struct ksm_state {
  std::vector<mm_struct*> mm_list;  ///< mm_slots in scan order
  std::map<std::pair<mm_struct*, std::uint64_t>, ksm_rmap_item> items;
  /// The rmap_items of mms that exited since the last scan, still on their stable nodes
  /// and counted: ksmd drops them at the start of its next scan (the exiting mm_slot is
  /// moved to just after its cursor). Node handles: the items do not move.
  std::vector<decltype(items)::node_type> exited;
  std::map<std::uint64_t, std::unique_ptr<ksm_tree_entry>> stable;  ///< content -> its node or chain
  /// The same entries in the shape of the kernel's rbtree: a search passes, and prunes, the
  /// nodes on its way down.
  interval_tree<ksm_tree_entry, &ksm_tree_entry::rb, ksm_tree_order> tree;
  /// Every stable tree search of this `ksm` is a prune pass over the chains it meets
  /// (`ksm prune`: stable_node_chains_prune_millisecs=0); otherwise none is.
  bool prune = false;
  /// The folios in ksmd's CPU's mlock batch, each holding a reference (ksm_mlock_batch_add()).
  std::vector<std::uint64_t> mlock_batch;
  std::map<std::uint64_t, ksm_rmap_item*> unstable;
  std::uint64_t full_scans = 0;
  /// Mappings one KSM page takes before a dup starts: 256 since 4.13 (`ksm-chains`); no
  /// limit before (`ksm-flat`, the design: one stable node and page per content).
  std::size_t max_page_sharing = KSM_MAX_PAGE_SHARING;
};

// ---- large folios (huge_memory.cc, khugepaged.cc) -------------------------------------------

/// thp_vma_suitable_order(): the naturally aligned block of 2^@order virtual pages around
/// @addr lies inside @vma, and its page offsets are aligned alike (an anonymous VMA moved by
/// mremap keeps its vm_pgoff), so one folio of that order can map it.
inline bool thp_vma_suitable_order(const vm_area_struct& vma, vaddr_t addr, unsigned order) {
  const std::uint64_t nr = std::uint64_t{1} << order;
  const vaddr_t start{addr.value & ~(nr * PAGE_SIZE - 1)};
  if (start < vma.vm_start || page_addr(start, nr) > vma.vm_end) return false;
  return (pages_between(vaddr_t{0}, vma.vm_start) - vma.vm_pgoff.value) % nr == 0;
}

// ---- walking the VMAs of a range (mmap.cc, mprotect.cc, madvise.cc, mlock.cc) --------------

/// Whether [start, end) is covered by VMAs without a gap.
inline bool range_mapped(const mm_struct& mm, vaddr_t start, vaddr_t end) {
  vaddr_t a = start;
  while (a < end) {
    auto* v = machine::find_vma(mm, a);
    if (!v) return false;
    a = v->vm_end;
  }
  return true;
}

/// Calls f(vma, s, e) for each VMA overlapping [start, end) with the part [s, e) it
/// covers, walking by address: f may split, merge or free VMAs (as vma_modify does).
template <typename F>
void for_each_vma_range(mm_struct& mm, vaddr_t start, vaddr_t end, F&& f) {
  vaddr_t a = start;
  while (a < end) {
    auto it = mm.mm_mt.upper_bound(a.value);
    if (it != mm.mm_mt.begin() && std::prev(it)->second->vm_end > a) --it;
    if (it == mm.mm_mt.end() || it->second->vm_start >= end) return;
    vm_area_struct* vma = it->second;
    const vaddr_t s = std::max(a, vma->vm_start), e = std::min(end, vma->vm_end);
    f(vma, s, e);
    a = e;
  }
}

/// The VMAs overlapping [start, end), in address order (the caller splits those that stick out).
inline std::vector<vm_area_struct*> vmas_in(const mm_struct& mm, vaddr_t start, vaddr_t end) {
  std::vector<vm_area_struct*> out;
  auto it = mm.mm_mt.upper_bound(start.value);
  if (it != mm.mm_mt.begin()) --it;
  for (; it != mm.mm_mt.end() && it->second->vm_start < end; ++it)
    if (it->second->vm_end > start) out.push_back(it->second);
  return out;
}

}  // namespace rmapkit::mm
