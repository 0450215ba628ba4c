// Kernel: mm/shmem.c and mm/memfd.c: a memfd is a shmem file. Its creation, the last
// put (truncate), shmem_get_folio() (a page from the page cache, back from swap, or new) and
// shmem_writeout() (pageout of a shmem page).
#include <string>
#include <utility>
#include <vector>

#include "internal.h"

namespace rmapkit::mm {

address_space* machine::memfd_create(std::string name, std::uint64_t pages, std::uint64_t key) {
  auto* as = _files.alloc();
  as->name = std::move(name);
  as->shmem = true;
  as->size_pages = pages;
  as->users = 1;
  // The scenario fills every page with a write(): all of them sit in the page cache, dirty
  // and referenced (shmem_write_begin() marks each page accessed once).
  for (std::uint64_t i = 0; i < pages; ++i) {
    folio* f = filemap_get_folio(*as, pgoff_t{i}, true);
    f->content = key * 0x100000001b3ULL + i + 1;
    f->set(folio_flag::dirty);
    f->set(folio_flag::referenced);
  }
  return as;
}

void machine::file_put(address_space* as) {
  if (--as->users > 0) return;
  // Last reference: the file's pages go with it (truncate_inode_pages()), each folio once.
  std::vector<pfn_t> heads;
  for (auto& [index, pfn] : as->i_pages)
    if (folio_of(pfn).head_pfn() == pfn) heads.push_back(pfn);
  for (pfn_t pfn : heads) filemap_remove_folio(folio_of(pfn));
  for (auto& [index, entry] : as->swapped) free_swap_and_cache(entry);
  as->swapped.clear();
  _files.free(as);
}

// shmem_allowable_huge_orders() for a memfd or MAP_SHARED|MAP_ANONYMOUS mapping (both are
// "anonymous shmem" to the kernel: a memfd has no link) under the runner's knobs: each
// size "advise", so a VM_HUGEPAGE mapping may take the scenario's sizes; then
// shmem_suitable_orders(): the block must fit the VMA, aligned as the file is, and hold no
// page or swap entry yet.
unsigned machine::shmem_fault_order(const address_space& as, const vm_area_struct& vma, vaddr_t addr) const {
  if (!vma.vm_flags.has(vm_flag::hugepage) || vma.vm_flags.has(vm_flag::nohugepage)) return 0;
  for (unsigned order = PMD_ORDER; order > 0; --order) {
    if ((_thp_shmem_orders & (1U << order)) == 0 || !thp_vma_suitable_order(vma, addr, order)) continue;
    const std::uint64_t nr = std::uint64_t{1} << order;
    const std::uint64_t first = linear_page_index(vma, addr).value & ~(nr - 1);
    auto cached = as.i_pages.lower_bound(first);
    auto swapped = as.swapped.lower_bound(first);
    if ((cached == as.i_pages.end() || cached->first >= first + nr) &&
        (swapped == as.swapped.end() || swapped->first >= first + nr))
      return order;
  }
  return 0;
}

folio* machine::shmem_get_folio(address_space& as, pgoff_t index, const vm_area_struct* vma, vaddr_t addr) {
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
  if (const unsigned order = vma ? shmem_fault_order(as, *vma, addr) : 0; order > 0) {
    folio& f = alloc_folio(order);
    filemap_add_folio(as, f, pgoff_t{index.value & ~((std::uint64_t{1} << order) - 1)});
    folio_put(f);
    return &folio_of(as.i_pages.at(index.value));
  }
  return filemap_get_folio(as, index, true);
}

// Kernel: shmem_writeout(): at pageout, the page moves from its file's page cache to the
// swap cache; the file keeps the swap entry in its place.
void machine::shmem_writeout(address_space& as, folio& f) {
  add_to_swap(f);
  swap_duplicate(f.swap);  // the file's reference
  as.swapped.emplace(f.index.value, f.swap);
  filemap_remove_folio(f);  // the swap cache holds the folio now
}

}  // namespace rmapkit::mm
