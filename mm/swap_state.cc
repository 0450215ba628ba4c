// Kernel: mm/swapfile.c (slots and their counts), mm/swap_state.c (the swap cache),
// do_swap_page() from mm/memory.c, shmem's swap-in from mm/shmem.c. One swap device of
// the ordinary kind (not zram: swap-ins always go through the swap cache).
#include <cerrno>
#include <stdexcept>
#include <vector>

#include "rmapkit/mm/machine.h"

namespace rmapkit::mm {

bool machine::add_to_swap(folio& f) {
  std::uint64_t slot;
  if (!_swap_free.empty()) {
    slot = _swap_free.back();
    _swap_free.pop_back();
  } else {
    slot = _swap_map.size() + 1;  // slot 0 holds the swap header
    _swap_map.push_back(0);
    _swap_content.push_back(0);
  }
  f.swap = swp_entry_t{slot};
  f.set(folio_flag::swapcache);
  folio_get(f);  // the swap cache's reference
  _swap_cache.emplace(slot, f.pfn);
  return true;
}

void machine::swap_duplicate(swp_entry_t e) { ++_swap_map.at(e.val - 1); }

void machine::swap_free(swp_entry_t e) {
  auto& c = _swap_map.at(e.val - 1);
  if (c == 0) throw std::logic_error("swap_free: the slot has no references");
  if (--c == 0 && !_swap_cache.count(e.val)) _swap_free.push_back(e.val);
}

void machine::free_swap_and_cache(swp_entry_t e) {
  swap_free(e);
  if (swap_count(e) != 0) return;
  if (auto it = _swap_cache.find(e.val); it != _swap_cache.end()) {
    folio& f = folio_of(it->second);
    if (!f.mapped()) delete_from_swap_cache(f);  // __try_to_reclaim_swap(TTRS_UNMAPPED)
  }
}

void machine::delete_from_swap_cache(folio& f) {
  _swap_cache.erase(f.swap.val);
  if (_swap_map.at(f.swap.val - 1) == 0) _swap_free.push_back(f.swap.val);
  f.swap = {};
  f.clear(folio_flag::swapcache);
  folio_put(f);
}

bool machine::folio_free_swap(folio& f) {
  if (!f.test(folio_flag::swapcache) || swap_count(f.swap) != 0) return false;
  delete_from_swap_cache(f);
  f.set(folio_flag::dirty);  // the copy on swap is gone: a later reclaim must write it again
  return true;
}

std::uint64_t machine::swap_count(swp_entry_t e) const {
  return e.val == 0 || e.val > _swap_map.size() ? 0 : _swap_map[e.val - 1];
}

bool machine::swap_slot_in_use(swp_entry_t e) const { return swap_count(e) > 0 || _swap_cache.count(e.val) != 0; }

folio& machine::swapin(swp_entry_t e) {
  if (auto it = _swap_cache.find(e.val); it != _swap_cache.end()) return folio_of(it->second);
  folio& f = alloc_folio();  // its reference is the swap cache's
  f.content = _swap_content.at(e.val - 1);
  f.swap = e;
  f.set(folio_flag::swapcache);
  f.set(folio_flag::swapbacked);
  _swap_cache.emplace(e.val, f.pfn);
  folio_add_lru(f, nullptr);
  count(vm_event::pswpin);
  return f;
}

// Kernel: do_swap_page(). The faulting process alone maps the swap-cache folio; other
// holders of the entry keep it until they fault. The page is exclusive when the entry
// carried the exclusive marker, or when nothing else holds it any more.
int machine::do_swap_page(vm_area_struct& vma, vaddr_t addr, pte_t pte, bool write) {
  const swp_entry_t entry = pte.swap_entry();
  if (!_swap_cache.count(entry.val)) count(vm_event::pgmajfault);
  folio& f = swapin(entry);
  const bool ksm = f.is_ksm();
  bool exclusive = !ksm && pte.swp_exclusive();
  folio_get(f);  // the fault's reference becomes the mapping's
  swap_free(entry);
  // should_try_to_free_swap(): a write by what would be the only user frees the slot.
  if (f.test(folio_flag::swapcache) &&
      (vma.vm_flags.has(vm_flag::locked) || (write && !ksm && f.refcount == 2)))
    folio_free_swap(f);
  if (!ksm && (exclusive || f.refcount == 1)) exclusive = true;
  const bool writable = exclusive && vma.vm_flags.has(vm_flag::write);
  if (!f.is_anon()) folio_add_new_anon_rmap(f, vma, addr, exclusive);
  else folio_add_anon_rmap_pte(f, vma, addr, exclusive);
  pte_t npte = pte_t::mk_present(f.pfn, writable).mkyoung();
  if (write && writable) npte = npte.mkdirty();
  vma.vm_mm->pgd.set(addr, npte);
  mlock_vma_folio(f, vma);
  if (write && !writable) return do_wp_page(vma, addr, npte);
  return 0;
}

folio* machine::shmem_get_folio(address_space& as, pgoff_t index) {
  if (folio* f = filemap_get_folio(as, index, false)) return f;
  if (auto it = as.swapped.find(index.value); it != as.swapped.end()) {
    // shmem_swapin_folio(): back into the page cache; the slot is let go.
    swp_entry_t e = it->second;
    as.swapped.erase(it);
    folio& f = swapin(e);
    f.mapping = &as;
    f.index = index;
    folio_get(f);  // the page cache's reference
    as.i_pages.emplace(index.value, f.pfn);
    swap_free(e);
    delete_from_swap_cache(f);
    f.set(folio_flag::dirty);
    return &f;
  }
  return filemap_get_folio(as, index, true);
}

void machine::drop_swap_cache() {
  std::vector<pfn_t> idle;
  for (const auto& [slot, pfn] : _swap_cache)
    if (!folio_of(pfn).mapped() && _swap_map.at(slot - 1) == 0) idle.push_back(pfn);
  for (pfn_t pfn : idle) delete_from_swap_cache(folio_of(pfn));
}

}  // namespace rmapkit::mm
