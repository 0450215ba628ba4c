// Kernel: mm/swapfile.c (v6.18): the swap device's slots and their counts (swap_map):
// allocation for a folio (folio_alloc_swap(), the model's add_to_swap()), duplicate and
// free, and folio_free_swap(). One swap device of the ordinary kind (not zram: swap-ins
// always go through the swap cache). This file owns swap_info_struct (internal.h);
// swap_state.cc keeps its swap cache and page_io.cc its contents.
#include <stdexcept>

#include "internal.h"

namespace rmapkit::mm {

// folio_alloc_swap(): a free slot (the lowest-numbered one freed last, else a new one) and
// the swap cache.
bool machine::add_to_swap(folio& f) {
  std::uint64_t slot;
  if (!_swap->free_slots.empty()) {
    slot = _swap->free_slots.back();
    _swap->free_slots.pop_back();
  } else {
    slot = _swap->swap_map.size() + 1;  // slot 0 holds the swap header
    _swap->swap_map.push_back(0);
    _swap->content.push_back(0);
  }
  f.swap = swp_entry_t{slot};
  f.set(folio_flag::swapcache);
  folio_get(f);  // the swap cache's reference
  _swap->cache.emplace(slot, f.pfn);
  return true;
}

void machine::swap_duplicate(swp_entry_t e) { ++_swap->swap_map.at(e.val - 1); }

void machine::swap_free(swp_entry_t e) {
  auto& c = _swap->swap_map.at(e.val - 1);
  if (c == 0) throw std::logic_error("swap_free: the slot has no references");
  if (--c == 0 && !_swap->cache.count(e.val)) free_swap_slot(e.val);
}

// A free slot forgets its shadow: the entry it described is gone.
void machine::free_swap_slot(std::uint64_t slot) {
  _swap->shadows.erase(slot);
  _swap->free_slots.push_back(slot);
}

void machine::free_swap_and_cache(swp_entry_t e) {
  swap_free(e);
  if (swap_count(e) != 0) return;
  if (folio* f = swap_cache_get_folio(e); f && !f->mapped())
    delete_from_swap_cache(*f);  // __try_to_reclaim_swap(TTRS_UNMAPPED)
}

bool machine::folio_free_swap(folio& f) {
  if (!f.test(folio_flag::swapcache) || swap_count(f.swap) != 0) return false;
  delete_from_swap_cache(f);
  f.set(folio_flag::dirty);  // the copy on swap is gone: a later reclaim must write it again
  return true;
}

std::uint64_t machine::swap_count(swp_entry_t e) const {
  return e.val == 0 || e.val > _swap->swap_map.size() ? 0 : _swap->swap_map[e.val - 1];
}

bool machine::swap_slot_in_use(swp_entry_t e) const { return swap_count(e) > 0 || _swap->cache.count(e.val) != 0; }

}  // namespace rmapkit::mm
