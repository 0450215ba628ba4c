// Kernel: fs/proc/task_mmu.c (v6.18): what /proc/PID/smaps adds up for a VMA, and what a
// write to /proc/PID/clear_refs clears. Both read the reverse map's results (map counts,
// swap counts, the accessed bit) rather than walk it; smaps is how users see rmap's work.
#include "rmapkit/mm/machine.h"

namespace rmapkit::mm {

namespace {

constexpr std::uint64_t PAGE_PSS = std::uint64_t{PAGE_SIZE} << mem_size_stats::PSS_SHIFT;

/// A page's proportional share: all of it when mapped once, else an equal part per mapping,
/// kept in fixed point so that three sharers sum to the page.
std::uint64_t pss_share(std::uint64_t mappings) { return mappings >= 2 ? PAGE_PSS / mappings : PAGE_PSS; }

}  // namespace

// smaps_account() and smaps_page_accumulate() for one PTE: a page mapped once is private,
// one mapped more than once shared, however many of its mappings are in this mm. A page of
// a large folio is counted by its own map count (folio_precise_page_mapcount()), every
// flag by its folio's.
void machine::smaps_account(mem_size_stats& mss, const folio& page, const folio& f, bool young, bool dirty,
                            bool locked) const {
  if (f.is_anon()) {
    mss.anonymous += PAGE_SIZE;
    if (!f.test(folio_flag::swapbacked) && !dirty && !f.test(folio_flag::dirty)) mss.lazyfree += PAGE_SIZE;
  }
  if (f.is_ksm()) mss.ksm += PAGE_SIZE;
  mss.resident += PAGE_SIZE;
  if (young || f.test(folio_flag::referenced)) mss.referenced += PAGE_SIZE;
  const auto mapcount = static_cast<std::uint64_t>(precise_page_mapcount(page));
  const std::uint64_t pss = pss_share(mapcount);
  const bool is_private = mapcount < 2;
  mss.pss += pss;
  if (f.is_anon()) mss.pss_anon += pss;
  else if (f.test(folio_flag::swapbacked)) mss.pss_shmem += pss;
  else mss.pss_file += pss;
  if (locked) mss.pss_locked += pss;
  if (dirty || f.test(folio_flag::dirty)) {
    mss.pss_dirty += pss;
    (is_private ? mss.private_dirty : mss.shared_dirty) += PAGE_SIZE;
  } else {
    (is_private ? mss.private_clean : mss.shared_clean) += PAGE_SIZE;
  }
}

std::uint64_t machine::shmem_partial_swap_usage(const address_space& as, std::uint64_t first, std::uint64_t end) const {
  std::uint64_t pages = 0;
  for (auto it = as.swapped.lower_bound(first); it != as.swapped.end() && it->first < end; ++it) ++pages;
  return pages * PAGE_SIZE;
}

mem_size_stats machine::smap_gather_stats(const vm_area_struct& vma) const {
  mem_size_stats mss;
  const bool locked = vma.vm_flags.has(vm_flag::locked);
  const mm_struct& mm = *vma.vm_mm;
  // smaps_pmd_entry(): a huge PMD counts each page as a PTE would, and adds to
  // AnonHugePages; the huge zero folio counts nothing.
  mm.pgd.for_each_huge(vma.vm_start, vma.vm_end, [&](vaddr_t, pte_t pmd) {
    if (pmd.pfn() != HUGE_ZERO_PFN && page_folio(pmd.pfn()).is_anon()) mss.anonymous_thp += PMD_SIZE;
  });
  mm.pgd.for_each_mapped(vma.vm_start, vma.vm_end, [&](vaddr_t, pte_t pte, bool) {
    if (pte.present()) {
      if (pte.pfn() == _zero_pfn || pte.pfn() == HUGE_ZERO_PFN) return;  // vm_normal_page() has no page for it
      smaps_account(mss, folio_of(pte.pfn()), page_folio(pte.pfn()), pte.young(), pte.dirty(), locked);
    } else if (pte.is_swap()) {
      mss.swap += PAGE_SIZE;
      mss.swap_pss += pss_share(swap_count(pte.swap_entry()));
    }
  });
  // A shmem mapping's pages out on swap have no swap PTE: they are counted from the object.
  // A private writable mapping may have replaced some of them with anonymous copies, so
  // only those under an empty PTE count; any other mapping takes the object's count whole.
  if (vma.vm_file && vma.vm_file->shmem) {
    const address_space& as = *vma.vm_file;
    const std::uint64_t first = vma.vm_pgoff.value, end = first + vma.pages();
    const std::uint64_t swapped = shmem_partial_swap_usage(as, first, end);
    if (swapped == 0 || vma.vm_flags.has(vm_flag::shared) || !vma.vm_flags.has(vm_flag::write)) {
      mss.swap += swapped;
    } else {
      for (auto it = as.swapped.lower_bound(first); it != as.swapped.end() && it->first < end; ++it)
        if (mm.pgd.get(page_addr(vma.vm_start, it->first - first)).none()) mss.swap += PAGE_SIZE;
    }
  }
  return mss;
}

// clear_refs_write() with CLEAR_REFS_ALL/ANON/MAPPED: every present PTE of the chosen VMAs
// becomes old and its folio unreferenced, so that what smaps' Referenced shows afterwards
// was touched afterwards. The zero page has no folio to clear and keeps its bit.
void machine::clear_refs(mm_struct& mm, clear_refs_type type) {
  for (auto& [start, vma] : mm.mm_mt) {
    if (type == clear_refs_type::anon && vma->vm_file) continue;
    if (type == clear_refs_type::mapped && !vma->vm_file) continue;
    mm.pgd.for_each_huge(vma->vm_start, vma->vm_end, [&](vaddr_t h, pte_t pmd) {
      if (pmd.young()) mm.pgd.set_huge_pmd(h, pmd.mkold());
      if (pmd.pfn() != HUGE_ZERO_PFN) page_folio(pmd.pfn()).clear(folio_flag::referenced);
    });
    mm.pgd.for_each(vma->vm_start, vma->vm_end, [&](vaddr_t a, pte_t pte) {
      if (!pte.present() || pte.pfn() == _zero_pfn) return;
      if (pte.young()) mm.pgd.set(a, pte.mkold());
      page_folio(pte.pfn()).clear(folio_flag::referenced);
    });
  }
}

}  // namespace rmapkit::mm
