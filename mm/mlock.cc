// Kernel: mm/mlock.c. A folio mapped by a VM_LOCKED VMA is PG_mlocked and sits on the
// unevictable list, where reclaim never looks. The kernel keeps an approximate
// mlock_count and lets reclaim correct it; the model keeps the exact rule (PG_mlocked
// exactly when some VM_LOCKED VMA maps the folio, which the invariant checker verifies)
// by asking the reverse map when a locked mapping goes away.
#include "rmapkit/mm/machine.h"

namespace rmapkit::mm {

bool machine::folio_mapped_in_locked_vma(folio& f) {
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

void machine::mlock_folio(folio& f) {
  if (f.pfn == _zero_pfn || f.test(folio_flag::mlocked)) return;
  f.set(folio_flag::mlocked);
  count("unevictable_pgs_mlocked");
  folio_set_lru_flag(f, folio_flag::active, false);
  folio_set_lru_flag(f, folio_flag::unevictable, true);
}

void machine::munlock_folio(folio& f) {
  if (f.pfn == _zero_pfn || !f.test(folio_flag::mlocked) || folio_mapped_in_locked_vma(f)) return;
  f.clear(folio_flag::mlocked);
  count("unevictable_pgs_munlocked");
  folio_set_lru_flag(f, folio_flag::unevictable, false);
  count("unevictable_pgs_rescued");
}

// mlock_pte_range(): the folios of the range follow the VMA's new VM_LOCKED.
void machine::mlock_vma_pages_range(vm_area_struct& vma, vaddr_t start, vaddr_t end) {
  std::vector<pfn_t> present;
  vma.vm_mm->pgd.for_each(start, end, [&](vaddr_t, pte_t pte) {
    if (pte.present() && pte.pfn() != _zero_pfn) present.push_back(pte.pfn());
  });
  const bool lock = vma.vm_flags.has(vm_flag::locked);
  for (pfn_t pfn : present) lock ? mlock_folio(folio_of(pfn)) : munlock_folio(folio_of(pfn));
}

}  // namespace rmapkit::mm
