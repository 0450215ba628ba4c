// Kernel: mm/swap.c and include/linux/mm_inline.h: the LRU lists of the lruvec. One node
// and no memcg hierarchy, so there is one lruvec. The kernel's per-CPU folio batches are
// left out: the kernel runner drains them before every step that depends on the lists,
// so the model's lists equal the kernel's after a drain. This file owns the lruvec.
#include <stdexcept>

#include "internal.h"

namespace rmapkit::mm {

/// folio_lru_list(): shmem pages are swap-backed, so they live on the anon lists.
lru_list machine::folio_lru_list(const folio& f) {
  if (f.test(folio_flag::unevictable)) return lru_list::unevictable;
  const bool file = !f.test(folio_flag::swapbacked);
  const bool active = f.test(folio_flag::active);
  if (file) return active ? lru_list::active_file : lru_list::inactive_file;
  return active ? lru_list::active_anon : lru_list::inactive_anon;
}

void machine::lruvec_add_folio(folio& f, bool tail) {
  if (f.test(folio_flag::lru)) throw std::logic_error("lruvec_add_folio: folio already on an LRU list");
  auto& h = _lruvec->lists[static_cast<std::size_t>(folio_lru_list(f))];
  const auto pfn = static_cast<std::uint32_t>(f.pfn.value);
  if (h.first == 0) {
    f.lru_prev = f.lru_next = 0;
    h.first = h.last = pfn;
  } else if (tail) {
    f.lru_prev = h.last;
    f.lru_next = 0;
    _frames[h.last].lru_next = pfn;
    h.last = pfn;
  } else {
    f.lru_prev = 0;
    f.lru_next = h.first;
    _frames[h.first].lru_prev = pfn;
    h.first = pfn;
  }
  h.nr++;
  f.set(folio_flag::lru);
}

void machine::lruvec_del_folio(folio& f) {
  if (!f.test(folio_flag::lru)) throw std::logic_error("lruvec_del_folio: folio not on an LRU list");
  auto& h = _lruvec->lists[static_cast<std::size_t>(folio_lru_list(f))];
  (f.lru_prev ? _frames[f.lru_prev].lru_next : h.first) = f.lru_next;
  (f.lru_next ? _frames[f.lru_next].lru_prev : h.last) = f.lru_prev;
  f.lru_prev = f.lru_next = 0;
  h.nr--;
  f.clear(folio_flag::lru);
}

// Whoever isolates a folio holds a reference, so that it cannot be freed under them while
// it is off every list (reclaim and MADV_PAGEOUT isolate this way).
void machine::folio_isolate_lru(folio& f) {
  lruvec_del_folio(f);
  folio_get(f);
}

void machine::folio_set_lru_flag(folio& f, folio_flag flag, bool on, bool tail) {
  const bool listed = f.test(folio_flag::lru);
  if (listed) lruvec_del_folio(f);
  f.assign(flag, on);
  if (listed) lruvec_add_folio(f, tail);
}

// New anon pages start on the inactive list (workingset detection for anon, v5.9+); a
// page faulted into a VM_LOCKED VMA goes straight to the unevictable list.
void machine::folio_add_lru(folio& f, const vm_area_struct* vma) {
  lruvec_add_folio(f);
  if (vma) mlock_vma_folio(f, *vma);
}

void machine::folio_mark_lazyfree(folio& f) {
  if (!f.is_anon() || !f.test(folio_flag::swapbacked) || f.test(folio_flag::swapcache) ||
      f.test(folio_flag::unevictable))
    return;
  const bool listed = f.test(folio_flag::lru);
  if (listed) lruvec_del_folio(f);
  f.clear(folio_flag::active);
  f.clear(folio_flag::referenced);
  f.clear(folio_flag::swapbacked);
  if (listed) lruvec_add_folio(f);
  count(vm_event::pglazyfree);
}

// folio_mark_accessed(): a first access marks the folio referenced; a second activates an
// evictable one (and forgets the first); an unevictable one stays where it is. A folio
// first mlocked since the mlock batch last drained is still on its old list for the kernel,
// active or not: a second access activates it, forgetting its referenced flag, as if it
// were not mlocked.
void machine::folio_mark_accessed(folio& f) {
  if (!f.test(folio_flag::referenced)) {
    f.set(folio_flag::referenced);
  } else if (f.test(folio_flag::unevictable)) {
    if (auto was_active = mlock_pending(f); was_active && !*was_active) f.clear(folio_flag::referenced);
  } else if (!f.test(folio_flag::active)) {
    folio_set_lru_flag(f, folio_flag::active, true);
    f.clear(folio_flag::referenced);
  }
}

std::vector<pfn_t> machine::lru_folios(lru_list l) const {
  std::vector<pfn_t> out;
  for (std::uint32_t p = _lruvec->lists[static_cast<std::size_t>(l)].first; p; p = _frames[p].lru_next)
    out.push_back(pfn_t{p});
  return out;
}

std::uint64_t machine::lru_size(lru_list l) const { return _lruvec->lists[static_cast<std::size_t>(l)].nr; }

}  // namespace rmapkit::mm
