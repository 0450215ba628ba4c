// Kernel: mm/swap_state.c (v6.18): the swap cache: lookup, a folio read back into it
// (swapin_readahead() without the readahead), deletion, the replacement migration makes,
// and dropping idle entries. The slots are swapfile.cc's, their contents page_io.cc's.
#include <vector>

#include "internal.h"

namespace rmapkit::mm {

void machine::delete_from_swap_cache(folio& f) {
  _swap->cache.erase(f.swap.val);
  if (_swap->swap_map.at(f.swap.val - 1) == 0) free_swap_slot(f.swap.val);
  f.swap = {};
  f.clear(folio_flag::swapcache);
  folio_put(f);
}

folio& machine::swapin(swp_entry_t e) {
  if (folio* cached = swap_cache_get_folio(e)) return *cached;
  folio& f = alloc_folio();  // its reference is the swap cache's
  swap_read_folio(f, e);
  workingset_refault(f, e);
  f.swap = e;
  f.set(folio_flag::swapcache);
  f.set(folio_flag::swapbacked);
  _swap->cache.emplace(e.val, f.pfn);
  folio_add_lru(f, nullptr);
  count(vm_event::pswpin);
  return f;
}

folio* machine::swap_cache_get_folio(swp_entry_t e) {
  auto it = _swap->cache.find(e.val);
  return it == _swap->cache.end() ? nullptr : &folio_of(it->second);
}

void machine::swap_cache_replace_folio(swp_entry_t e, folio& now) { _swap->cache[e.val] = now.pfn; }

// Kernel: workingset_eviction() as __remove_mapping() calls it for a swap-cache folio that
// reclaim frees: a shadow entry takes the folio's place in the swap cache.
void machine::workingset_eviction(const folio& f) { _swap->shadows[f.swap.val] = _swap->reclaim_generation; }

// Kernel: workingset_refault(): a folio read back in place of a shadow is activated if its
// refault distance (pages evicted or activated since) is within the workingset. The
// runner's memory cgroup holds its agents and its own pages too, a workingset larger than
// any scenario's pageouts, and a `reclaim` evicts all of it, so the model's rule is: recent
// unless a `reclaim` ran since the eviction (seen on the kernel: a page of zeroes paged out
// and read back is active; after a reclaim it is not).
void machine::workingset_refault(folio& f, swp_entry_t e) {
  const auto it = _swap->shadows.find(e.val);
  if (it == _swap->shadows.end()) return;
  if (it->second == _swap->reclaim_generation) f.set(folio_flag::active);
  _swap->shadows.erase(it);
}

void machine::workingset_forget_shadows() { ++_swap->reclaim_generation; }

void machine::drop_swap_cache() {
  std::vector<pfn_t> idle;
  for (const auto& [slot, pfn] : _swap->cache)
    if (!folio_of(pfn).mapped() && _swap->swap_map.at(slot - 1) == 0) idle.push_back(pfn);
  for (pfn_t pfn : idle) delete_from_swap_cache(folio_of(pfn));
}

}  // namespace rmapkit::mm
