// Kernel: mm/vmscan.c shrink_folio_list() for one folio, as MADV_PAGEOUT uses it
// (mm/madvise.c madvise_cold_or_pageout_pte_range()); shmem_writeout() from mm/shmem.c.
#include <cerrno>
#include <vector>

#include "rmapkit/mm/machine.h"

namespace rmapkit::mm {

// Reclaims one folio: anon to swap (every PTE becomes the same swap entry), shmem to swap
// inside its file (PTEs become none). False when it stays (mlocked mapping, KSM).
bool machine::pageout_folio(folio& f) {
  if (f.is_ksm()) return false;
  if (f.is_anon()) {
    if (!f.test(folio_flag::swapcache) && !f.mapped()) return false;
    if (!f.test(folio_flag::swapcache)) add_to_swap(f);
    if (f.mapped() && !try_to_unmap(f)) return false;
    _swap_content.at(f.swap.val - 1) = f.content;  // swap_writeout()
    count("pswpout");
    delete_from_swap_cache(f);  // its last reference: the folio is freed
    return true;
  }
  address_space* as = f.file();
  if (!as) return false;
  if (f.mapped() && !try_to_unmap(f)) return false;
  // shmem_writeout(): the page leaves the page cache; the file keeps the swap entry.
  add_to_swap(f);
  swap_duplicate(f.swap);  // the file's reference
  _swap_content.at(f.swap.val - 1) = f.content;
  as->swapped.emplace(f.index.value, f.swap);
  as->i_pages.erase(f.index.value);
  count("pswpout");
  f.mapping = std::monostate{};
  delete_from_swap_cache(f);
  folio_put(f);  // the page cache's reference
  return true;
}

// MADV_PAGEOUT leaves alone every page that another mapping also uses.
int machine::madvise_pageout(vm_area_struct& vma, vaddr_t start, vaddr_t end) {
  std::vector<pfn_t> victims;
  vma.vm_mm->pgd.for_each(start, end, [&](vaddr_t, pte_t pte) {
    if (!pte.present() || pte.pfn() == _zero_pfn) return;
    if (folio_of(pte.pfn()).mapcount != 1) return;
    victims.push_back(pte.pfn());
  });
  for (pfn_t pfn : victims) pageout_folio(folio_of(pfn));
  return 0;
}

// Kernel: the mlock side of folio_referenced(): a folio mapped by a VM_LOCKED VMA is
// unevictable, and reclaim leaves it (and so every other mapping of it) alone.
bool machine::folio_mlocked(folio& f) {
  if (!f.mapped()) return false;
  bool locked = false;
  rmap_walk_control rwc;
  rwc.rmap_one = [&](folio& fo, vm_area_struct& vma, vaddr_t addr) {
    if (vma.vm_flags.has(vm_flag::locked) && page_vma_mapped(fo, vma, addr)) locked = true;
    return !locked;
  };
  rmap_walk(f, rwc);
  return locked;
}

// Reclaim of everything reclaimable, as the scenario's `reclaim` does it on the kernel
// (a memory cgroup emptied to the last page): anon folios to swap with the same entry in
// every sharer, shmem and file pages to swap inside their files, unmapped swap-cache
// folios dropped. Mlocked folios and the zero page stay. KSM folios are the caller's
// business (the scenario refuses reclaim while any exist).
void machine::shrink_all() {
  std::vector<pfn_t> folios;
  for (std::size_t pfn = 2; pfn < _frames.size(); ++pfn)
    if (_frames[pfn].in_use) folios.push_back(pfn_t{pfn});
  for (pfn_t pfn : folios) {
    folio& f = folio_of(pfn);
    if (!f.in_use || f.is_ksm() || f.pfn != pfn) continue;
    const bool anon = f.is_anon();
    count("pgscan_direct");
    count(anon ? "pgscan_anon" : "pgscan_file");
    if (folio_mlocked(f)) continue;
    if (pageout_folio(f)) {
      count("pgsteal_direct");
      count(anon ? "pgsteal_anon" : "pgsteal_file");
    }
  }
}

}  // namespace rmapkit::mm
