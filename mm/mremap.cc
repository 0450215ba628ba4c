// Kernel: mm/mremap.c (v6.18): resize in place and move. A move keeps the object offset
// of the moved bytes as the new VMA's vm_pgoff, so every folio->index stays valid; only
// an unfaulted anonymous VMA takes a fresh pgoff from its new address.
#include <cerrno>

#include "rmapkit/mm/machine.h"

namespace rmapkit::mm {

int machine::do_mremap_resize(mm_struct& mm, vaddr_t addr, std::uint64_t old_pages, std::uint64_t new_pages) {
  vm_area_struct* vma = find_vma(mm, addr);
  const vaddr_t old_end = page_addr(addr, old_pages), new_end = page_addr(addr, new_pages);
  if (!vma || vma->vm_start > addr || old_end > vma->vm_end) return -EFAULT;  // spans VMAs
  if (new_pages < old_pages) return munmap_range(mm, new_end, old_end);
  if (new_pages == old_pages) return 0;
  if (old_end != vma->vm_end) return -ENOMEM;
  auto it = mm.mm_mt.lower_bound(old_end.value);
  if (it != mm.mm_mt.end() && it->second->vm_start < new_end) return -ENOMEM;
  // vma_merge_extend(): the VMA grows over the new range.
  vma_set_range(*vma, vma->vm_start, new_end, vma->vm_pgoff);
  if (vma->vm_flags.has(vm_flag::locked)) populate_vma_page_range(*vma, old_end, new_end);
  return 0;
}

// Kernel: move_vma() for a range inside one VMA (the runner moves a region VMA by VMA).
int machine::do_mremap_move(mm_struct& mm, vaddr_t addr, std::uint64_t pages, vaddr_t new_addr) {
  vm_area_struct* vma = find_vma(mm, addr);
  const vaddr_t end = page_addr(addr, pages), new_end = page_addr(new_addr, pages);
  if (!vma || vma->vm_start > addr || end > vma->vm_end) return -EFAULT;
  auto it = mm.mm_mt.lower_bound(new_addr.value);
  if (find_vma(mm, new_addr) || (it != mm.mm_mt.end() && it->second->vm_start < new_end)) return -ENOMEM;
  // KSM pages record their addresses: they are broken before they move.
  if (vma->vm_flags.has(vm_flag::mergeable)) unmerge_ksm_pages(*vma, addr, end);
  if (vma->vm_start < addr) vma = split_vma(*vma, addr, false);
  if (end < vma->vm_end) split_vma(*vma, end, false);

  pgoff_t pgoff = vma->vm_pgoff;
  if (vma->is_anonymous() && !vma->anon_vma) pgoff = pgoff_t{new_addr.value >> PAGE_SHIFT};
  // copy_vma(): a new VMA with an exact copy of the chain, or a merge with a neighbour.
  auto* n = vm_area_dup(*vma);
  n->vm_start = new_addr;
  n->vm_end = new_end;
  n->vm_pgoff = pgoff;
  anon_vma_clone(*n, *vma);
  vma_link(n);
  // move_page_tables(): the same entries at the new address, whole tables where they can
  // go whole; folios are untouched.
  // move_huge_pmd() moves a huge PMD whole only to the same place in another 2 MiB; at any
  // other distance it is split first (research fact 25).
  if (((new_addr.value - addr.value) & (PMD_SIZE - 1)) != 0)
    for (vaddr_t h{addr.value & ~(PMD_SIZE - 1)}; h < end; h = vaddr_t{h.value + PMD_SIZE}) split_huge_pmd(*vma, h);
  mm.pgd.move_range(addr, end, new_addr);
  remove_vma(vma);
  free_pgtables(mm, addr, end);
  vma_merge_existing(n);
  return 0;
}

}  // namespace rmapkit::mm
