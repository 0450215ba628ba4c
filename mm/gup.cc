// Kernel: mm/gup.c (v6.18): populate_vma_page_range(), the faulting-in that mlock and an
// mremap or mprotect of a locked VMA ask for. The model has no get_user_pages() users
// besides these: nothing pins pages.
#include <algorithm>

#include "rmapkit/mm/machine.h"

namespace rmapkit::mm {

// populate_vma_page_range() (mlock, mremap of a locked VMA). Private writable
// mappings are populated with write faults, so COW is broken now, not later. Every page it
// reaches is touched (FOLL_TOUCH): marked accessed, and dirty when written, as a user
// access would leave it; that is what smaps' Referenced shows of an mlocked range. A huge
// PMD is touched only by a write.
void machine::populate_vma_page_range(vm_area_struct& vma, vaddr_t start, vaddr_t end) {
  if (!vma.vm_flags.has(vm_flag::read) && !vma.vm_flags.has(vm_flag::write)) return;
  const bool write = vma.vm_flags.has(vm_flag::write) && !vma.vm_flags.has(vm_flag::shared);
  for (vaddr_t a = start; a < end; a = page_addr(a, 1)) {
    pte_t pte = vma.vm_mm->pgd.get(a);
    bool ok = write ? pte.present() && pte.write() : pte.present();
    if (!ok) {
      handle_mm_fault(vma, a, write);
      pte = vma.vm_mm->pgd.get(a);
    }
    // follow_huge_pmd(): the rest of a huge PMD is skipped. touch_pmd() makes it young and
    // dirty for a write only: x86's pmdp_set_access_flags() stores no bare accessed bit
    // (the MMU sets that on a real access), so a read leaves an old PMD old (seen on the
    // kernel: mlock of a read-only range after fork or clear_refs). The folio is not marked
    // accessed, as a PTE's page is.
    if (vma.vm_mm->pgd.huge_pmd(a)) {
      if (write) touch_huge_pmd(*vma.vm_mm, a, true);
      a = vaddr_t{std::min(end.value, (a.value | (PMD_SIZE - 1)) + 1) - PAGE_SIZE};
      continue;
    }
    if (!pte.present() || pte.pfn() == _zero_pfn) continue;
    folio& f = page_folio(pte.pfn());  // a page of a large folio marks its folio
    if (write && !pte.dirty()) f.set(folio_flag::dirty);
    folio_mark_accessed(f);
  }
}

}  // namespace rmapkit::mm
