// Kernel: mm/khugepaged.c (v6.18): MADV_COLLAPSE (madvise_collapse()), the synchronous
// collapse of anonymous memory into PMD-mapped THPs. khugepaged itself, the daemon that
// collapses behind a process's back, is what the kernel runner keeps out
// (PR_SET_THP_DISABLE between statements): the model has no such thread.
#include <cerrno>
#include <cstdint>
#include <vector>

#include "internal.h"

namespace rmapkit::mm {

// MADV_COLLAPSE ignores the sizes enabled and VM_HUGEPAGE, but not VM_NOHUGEPAGE
// (thp_vma_allowable_order() with TVA_FORCED_COLLAPSE). Each naturally aligned 2 MiB block
// of [start, end) is collapsed on its own; the call succeeds only if every block ends up
// PMD-mapped, and a block that fails does not stop the others (madvise_collapse()).
int machine::madvise_collapse(vm_area_struct& vma, vaddr_t start, vaddr_t end) {
  if (!vma.is_anonymous() || vma.vm_flags.has(vm_flag::nohugepage)) return -EINVAL;
  const std::uint64_t first = (start.value + PMD_SIZE - 1) & ~(PMD_SIZE - 1), last = end.value & ~(PMD_SIZE - 1);
  int failed = 0;
  for (std::uint64_t h = first; h < last; h += PMD_SIZE)
    if (int r = collapse_huge_page(vma, vaddr_t{h}); r < 0) failed = r;
  return failed;
}

// hpage_collapse_scan_pmd() + collapse_huge_page(). A block a huge PMD maps already (a THP
// or the huge zero folio) counts as collapsed and stays as it is (research fact 33, corpus
// v2/37). Otherwise the block needs a PTE table with at least one page mapped other than
// the zero page, else EINVAL. Swapped pages are read back first
// (__collapse_huge_page_swapin()). Then every page is copied into a new PMD-sized folio
// (a never-mapped or zero page as zeroes) and the old mappings go as a zap would take them;
// a page another process maps stays there, its count one lower (fact 33: always a copy,
// even of a PTE-mapped PMD-sized folio). The new folio is exclusive, mapped by one dirty,
// young PMD, writable where the VMA is.
int machine::collapse_huge_page(vm_area_struct& vma, vaddr_t h) {
  auto& pgd = vma.vm_mm->pgd;
  if (pgd.huge_pmd(h)) return 0;
  if (!thp_vma_suitable_order(vma, h, PMD_ORDER)) return -EINVAL;
  const vaddr_t h_end{h.value + PMD_SIZE};
  bool any_page = false;
  std::vector<vaddr_t> swapped;
  pgd.for_each(h, h_end, [&](vaddr_t a, pte_t pte) {
    if (pte.is_swap()) swapped.push_back(a);
    any_page = any_page || pte.is_swap() || (pte.present() && pte.pfn() != _zero_pfn);
  });
  if (!any_page) return -EINVAL;
  for (vaddr_t a : swapped) handle_mm_fault(vma, a, false);
  std::vector<std::uint64_t> contents(HPAGE_PMD_NR, 0);
  pgd.for_each(h, h_end, [&](vaddr_t a, pte_t pte) {
    if (pte.present() && pte.pfn() != _zero_pfn) contents[pages_between(h, a)] = folio_of(pte.pfn()).content;
  });
  zap_pte_range(vma, h, h_end);
  pgd.free_pte_table_if_empty(h);  // the table goes (pmdp_collapse_flush()); the PMD takes its place
  map_anon_folio_pmd(vma, h);
  const folio& f = folio_of(pgd.huge_pmd(h)->pfn());
  for (std::uint64_t i = 0; i < HPAGE_PMD_NR; ++i) _frames[f.pfn.value + i].content = contents[i];
  return 0;
}

}  // namespace rmapkit::mm
