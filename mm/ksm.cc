// Kernel: mm/ksm.c. What the rest of the model needs of KSM before the scanner itself:
// registering an mm, and breaking KSM pages of a range (MADV_UNMERGEABLE, mremap).
#include <vector>

#include "rmapkit/mm/machine.h"

namespace rmapkit::mm {

void machine::ksm_enter(mm_struct& mm) { mm.ksm_registered = true; }

// break_ksm(): a KSM page in the range is replaced by a private copy, as a write would.
void machine::unmerge_ksm_pages(vm_area_struct& vma, vaddr_t start, vaddr_t end) {
  std::vector<vaddr_t> ksm_ptes;
  vma.vm_mm->pgd.for_each(start, end, [&](vaddr_t a, pte_t pte) {
    if (pte.present() && pte.pfn() != _zero_pfn && folio_of(pte.pfn()).is_ksm()) ksm_ptes.push_back(a);
  });
  for (vaddr_t a : ksm_ptes) {
    pte_t pte = vma.vm_mm->pgd.get(a);
    wp_page_copy(vma, a, pte, &folio_of(pte.pfn()));
  }
}

}  // namespace rmapkit::mm
