// Kernel: mm/gup.c (v6.18): populate_vma_page_range(), the faulting-in that mlock and an
// mremap or mprotect of a locked VMA ask for. The model has no get_user_pages() users
// besides these: nothing pins pages.
#include "rmapkit/mm/machine.h"

namespace rmapkit::mm {

// populate_vma_page_range() (mlock, mremap of a locked VMA). Private writable
// mappings are populated with write faults, so COW is broken now, not later.
void machine::populate_vma_page_range(vm_area_struct& vma, vaddr_t start, vaddr_t end) {
  if (!vma.vm_flags.has(vm_flag::read) && !vma.vm_flags.has(vm_flag::write)) return;
  const bool write = vma.vm_flags.has(vm_flag::write) && !vma.vm_flags.has(vm_flag::shared);
  for (vaddr_t a = start; a < end; a = page_addr(a, 1)) {
    pte_t pte = vma.vm_mm->pgd.get(a);
    bool ok = write ? pte.present() && pte.write() : pte.present();
    if (!ok) handle_mm_fault(vma, a, write);
  }
}

}  // namespace rmapkit::mm
