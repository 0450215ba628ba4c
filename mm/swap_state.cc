// Kernel: mm/swapfile.c (slots and their counts) and mm/swap_state.c (the swap cache),
// with the write to a slot of mm/page_io.c. One swap device of the ordinary kind (not
// zram: swap-ins always go through the swap cache). This file owns swap_info_struct.
#include <cerrno>
#include <stdexcept>
#include <vector>

#include "internal.h"

namespace rmapkit::mm {

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
  if (--c == 0 && !_swap->cache.count(e.val)) _swap->free_slots.push_back(e.val);
}

void machine::free_swap_and_cache(swp_entry_t e) {
  swap_free(e);
  if (swap_count(e) != 0) return;
  if (auto it = _swap->cache.find(e.val); it != _swap->cache.end()) {
    folio& f = folio_of(it->second);
    if (!f.mapped()) delete_from_swap_cache(f);  // __try_to_reclaim_swap(TTRS_UNMAPPED)
  }
}

void machine::delete_from_swap_cache(folio& f) {
  _swap->cache.erase(f.swap.val);
  if (_swap->swap_map.at(f.swap.val - 1) == 0) _swap->free_slots.push_back(f.swap.val);
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
  return e.val == 0 || e.val > _swap->swap_map.size() ? 0 : _swap->swap_map[e.val - 1];
}

bool machine::swap_slot_in_use(swp_entry_t e) const { return swap_count(e) > 0 || _swap->cache.count(e.val) != 0; }

folio& machine::swapin(swp_entry_t e) {
  if (auto it = _swap->cache.find(e.val); it != _swap->cache.end()) return folio_of(it->second);
  folio& f = alloc_folio();  // its reference is the swap cache's
  f.content = _swap->content.at(e.val - 1);
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

void machine::swap_writeout(folio& f) { _swap->content.at(f.swap.val - 1) = f.content; }

void machine::swap_cache_replace_folio(swp_entry_t e, folio& now) { _swap->cache[e.val] = now.pfn; }

void machine::drop_swap_cache() {
  std::vector<pfn_t> idle;
  for (const auto& [slot, pfn] : _swap->cache)
    if (!folio_of(pfn).mapped() && _swap->swap_map.at(slot - 1) == 0) idle.push_back(pfn);
  for (pfn_t pfn : idle) delete_from_swap_cache(folio_of(pfn));
}

}  // namespace rmapkit::mm
