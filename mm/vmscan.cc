// Kernel: mm/vmscan.c: shrink_active_list(), shrink_inactive_list(), shrink_folio_list()
// with folio_check_references(), pageout() (a shmem page goes through shmem_writeout(),
// shmem.cc), and reclaim_pages() as MADV_PAGEOUT uses it (madvise.cc).
//
// A folio's way out, pass by pass, as the kernel takes it: its young PTEs keep it (one)
// or activate it (several, or referenced twice); aging moves active folios back to the
// inactive list; an unreferenced folio is added to the swap cache, unmapped by
// try_to_unmap() and written; the write leaves it clean in the swap cache, and the next
// pass frees it. Mlocked folios are culled to the unevictable list.
#include <stdexcept>
#include <vector>

#include "rmapkit/mm/machine.h"

namespace rmapkit::mm {

/// What folio_check_references() decides for a folio.
enum class machine::folioref : int { reclaim, reclaim_clean, keep, activate };
/// What shrink_folio() did with a folio, and so where folio_putback() puts it.
enum class machine::reclaim_outcome : int { freed, written, kept, activated, culled };

/// The order the scan meets them: oldest (the list's tail) first.
static std::vector<pfn_t> oldest_first(std::vector<pfn_t> v) { return {v.rbegin(), v.rend()}; }

// Kernel: folio_check_references().
machine::folioref machine::folio_check_references(folio& f) {
  vm_flags_t vm_flags;
  const int referenced_ptes = folio_referenced(f, &vm_flags);
  const bool referenced_folio = f.test(folio_flag::referenced);
  f.clear(folio_flag::referenced);
  if (vm_flags.has(vm_flag::locked)) return folioref::activate;  // mlocked folios are culled before
  if (referenced_ptes > 0) {
    // A folio used by several mappings, or used again since the last scan, is active;
    // one use keeps it on the inactive list one more round.
    f.set(folio_flag::referenced);
    if (referenced_folio || referenced_ptes > 1) return folioref::activate;
    if (vm_flags.has(vm_flag::exec) && !f.test(folio_flag::swapbacked)) return folioref::activate;
    return folioref::keep;
  }
  if (referenced_folio && !f.test(folio_flag::swapbacked)) return folioref::reclaim_clean;
  return folioref::reclaim;
}

void machine::pageout(folio& f) {
  if (address_space* as = f.file()) shmem_writeout(*as, f);
  swap_writeout(f);
  f.clear(folio_flag::dirty);
  count(vm_event::pswpout);
}

// One folio of shrink_folio_list(). The folio is isolated (off the LRU) on entry; the
// caller puts back what is not freed.
machine::reclaim_outcome machine::shrink_folio(folio& f, bool ignore_references, std::vector<pfn_t>& list) {
  if (f.test(folio_flag::mlocked)) return reclaim_outcome::culled;
  if (!ignore_references) {
    switch (folio_check_references(f)) {
      case folioref::activate: return reclaim_outcome::activated;
      case folioref::keep: return reclaim_outcome::kept;
      case folioref::reclaim:
      case folioref::reclaim_clean: break;
    }
  }
  // A swap file takes no large folio (research fact 29): the folio is split first, its
  // zero-filled pages mapped to the zero page, and its pages go on one by one, the head now
  // (the others are back on the inactive list, for the next pass). The isolation's
  // reference is the caller's pin.
  if (f.is_large() && f.is_anon() && f.test(folio_flag::swapbacked) && !split_large_folio(f, 1))
    return reclaim_outcome::activated;
  // Anon folios get a swap slot before they are unmapped: their PTEs become its entry.
  if (f.is_anon() && f.test(folio_flag::swapbacked) && !f.test(folio_flag::swapcache)) {
    add_to_swap(f);
    f.set(folio_flag::dirty);  // nothing on the slot yet
  }
  if (folio_mapped(f) && !try_to_unmap(f)) return reclaim_outcome::activated;
  // A lazily freed folio no one wrote to since: dropped, not written (PGLAZYFREED).
  if (f.is_anon() && !f.test(folio_flag::swapbacked)) {
    if (f.refcount != 1 || f.test(folio_flag::dirty)) return reclaim_outcome::kept;
    count(vm_event::pglazyfreed);
    return reclaim_outcome::freed;
  }
  // A clean shmem page was never written to (a read fault's zeroes; pages filled by write()
  // and pages back from swap are dirty): reclaim drops it, and its file keeps a hole, not a swap
  // entry, as smaps' Swap shows. A dirty one is written to swap.
  if (!f.test(folio_flag::dirty) && f.file()) {
    filemap_remove_folio(f);
    return reclaim_outcome::freed;
  }
  if (f.test(folio_flag::dirty)) {
    // shmem_writeout(): the swap file takes no large folio, so a shmem one is split, its
    // pages dirty, the tails put on the list being reclaimed and written in their turn (seen
    // on the kernel: MADV_PAGEOUT of a whole written 64k shmem folio swaps all its pages).
    if (f.is_large() && !split_file_folio(f, 1, &list)) return reclaim_outcome::activated;
    pageout(f);
    // A page of zeroes is not written: swap_writepage() marks the slot in the swap
    // device's zeromap, and with no writeback to wait for, this pass frees the folio
    // (a swapped-out KSM page of zeroes leaves the swap cache, and its stable node goes
    // stale). Any other page is under writeback: freed by a later pass.
    if (f.content != 0) return reclaim_outcome::written;
  }
  // __remove_mapping(): clean, unmapped, and held only by the swap cache (and isolation).
  if (f.test(folio_flag::swapcache) && f.refcount == 2 && !folio_mapped(f)) {
    workingset_eviction(f);
    delete_from_swap_cache(f);  // its last reference: the folio is freed
    return reclaim_outcome::freed;
  }
  return reclaim_outcome::kept;
}

/// Puts an isolated folio back after shrink_folio(): to the active list, the unevictable
/// list, or the head of its inactive list (the tail, just written: folio_rotate_reclaimable()).
void machine::folio_putback(folio& f, reclaim_outcome r) {
  if (r == reclaim_outcome::freed) return;
  // activate_locked: a folio found mlocked on the way (a VM_LOCKED mapping restored its
  // mlock, or a split mlocked the page) is not made active, and lets its swap slot go.
  if (r == reclaim_outcome::activated && f.test(folio_flag::mlocked)) {
    if (f.test(folio_flag::swapcache)) folio_free_swap(f);
  } else if (r == reclaim_outcome::activated) {
    f.set(folio_flag::active);
    count(vm_event::pgactivate);
  }
  if (r == reclaim_outcome::culled) {
    f.set(folio_flag::unevictable);
    count(vm_event::unevictable_pgs_culled);
  }
  lruvec_add_folio(f, r == reclaim_outcome::written);
  if (r == reclaim_outcome::written) count(vm_event::pgrotated);
}

// Kernel: shrink_inactive_list() + shrink_folio_list(), scanning the whole list.
bool machine::shrink_inactive_list(lru_list l) {
  const bool anon = l == lru_list::inactive_anon;
  bool progress = false;
  std::vector<pfn_t> list = oldest_first(lru_folios(l));
  // Isolated one at a time; a split's tails join the list behind (they are isolated already).
  const std::size_t on_lru = list.size();
  for (std::size_t i = 0; i < list.size(); ++i) {
    folio& f = folio_of(list[i]);
    if (i < on_lru) folio_isolate_lru(f);
    count(vm_event::pgscan_direct);
    count(anon ? vm_event::pgscan_anon : vm_event::pgscan_file);
    const bool was_referenced = f.test(folio_flag::referenced);
    const reclaim_outcome r = shrink_folio(f, false, list);
    if (r == reclaim_outcome::freed) {
      count(vm_event::pgsteal_direct);
      count(anon ? vm_event::pgsteal_anon : vm_event::pgsteal_file);
    }
    progress = progress || r != reclaim_outcome::kept || was_referenced != f.test(folio_flag::referenced) ||
               list.size() > on_lru;
    if (r != reclaim_outcome::freed) folio_putback(f, r);
    folio_put(f);
  }
  return progress;
}

// Kernel: shrink_active_list(). Everything goes back to the inactive list, its young
// bits cleared on the way, except executable file pages still in use.
bool machine::shrink_active_list(lru_list l) {
  bool progress = false;
  for (pfn_t pfn : oldest_first(lru_folios(l))) {
    folio& f = folio_of(pfn);
    count(vm_event::pgrefill);
    vm_flags_t vm_flags;
    if (folio_mapped(f) && folio_referenced(f, &vm_flags) > 0 && vm_flags.has(vm_flag::exec) &&
        !f.test(folio_flag::swapbacked))
      continue;
    folio_set_lru_flag(f, folio_flag::active, false);
    count(vm_event::pgdeactivate);
    progress = true;
  }
  return progress;
}

bool machine::shrink_lruvec() {
  bool progress = false;
  for (auto [active, inactive] : {std::pair{lru_list::active_anon, lru_list::inactive_anon},
                                  std::pair{lru_list::active_file, lru_list::inactive_file}}) {
    progress = shrink_active_list(active) || progress;
    progress = shrink_inactive_list(inactive) || progress;
  }
  return progress;
}

// The scenario's `reclaim`, as the kernel runner drives it (a memory cgroup emptied until
// what its processes map stops changing): passes until one changes nothing, or until five
// in a row free and write nothing (a shmem large folio that a VM_LOCKED VMA maps in part
// goes back and forth between the anon lists: folio_referenced() skips its locked PTEs,
// try_to_unmap() stops at them, and so does the split). Mlocked folios and the zero page
// stay. KSM folios are the caller's business (the scenario refuses reclaim while any exist).
void machine::shrink_all() {
  constexpr int max_passes = 64, max_idle = 5;  // each folio needs at most five passes
  int idle = 0;
  for (int pass = 0; pass < max_passes; ++pass) {
    const std::uint64_t freed = event_count(vm_event::pgsteal_direct), written = event_count(vm_event::pswpout);
    if (!shrink_lruvec()) break;
    idle = event_count(vm_event::pgsteal_direct) == freed && event_count(vm_event::pswpout) == written ? idle + 1 : 0;
    if (idle == max_idle) break;
    if (pass + 1 == max_passes) throw std::logic_error("shrink_all: reclaim did not settle");
  }
  workingset_forget_shadows();
}

// The scenario's `shrink`, as the kernel runner drives it: its memory cgroup emptied with
// swappiness 0 (memory.force_empty). Reclaim then scans the file lists only (get_scan_count()'s
// SCAN_FILE), where, the runner's files being shmem and so on the anon lists, only lazily
// freed anonymous folios are (MADV_FREE); after each pass the cgroup's shrinkers run, the
// deferred split queue's among them. Passes go on until one changes nothing, or, as
// force_empty gives up after five attempts that reclaim nothing, until five in a row free
// and split nothing (a large folio a VM_LOCKED VMA maps in part goes back and forth
// between the file lists, neither reclaimed nor mlocked).
void machine::shrink_memcg_file() {
  constexpr int max_passes = 64, max_idle = 5;
  int idle = 0;
  for (int pass = 0; pass < max_passes; ++pass) {
    const std::uint64_t stolen = event_count(vm_event::pgsteal_file);
    bool progress = shrink_active_list(lru_list::active_file);
    progress = shrink_inactive_list(lru_list::inactive_file) || progress;
    const std::uint64_t split = deferred_split_scan();
    if (!progress && split == 0) return;
    idle = split == 0 && event_count(vm_event::pgsteal_file) == stolen ? idle + 1 : 0;
    if (idle == max_idle) return;
  }
  throw std::logic_error("shrink_memcg_file: reclaim did not settle");
}

// Kernel: reclaim_pages(): folios isolated by MADV_PAGEOUT go through shrink_folio_list()
// with their references ignored; what is not freed goes back to its list.
void machine::reclaim_pages(const std::vector<pfn_t>& isolated) {
  std::vector<pfn_t> list = isolated;  // a split's tails join it
  for (std::size_t i = 0; i < list.size(); ++i) {
    folio& f = folio_of(list[i]);
    const reclaim_outcome r = shrink_folio(f, true, list);
    if (r != reclaim_outcome::freed) folio_putback(f, r);
    folio_put(f);
  }
}

}  // namespace rmapkit::mm
