// Kernel: mm/mlock.c. A folio mapped by a VM_LOCKED VMA is PG_mlocked and sits on the
// unevictable list, where reclaim never looks. The kernel keeps an approximate
// folio->mlock_count and lets reclaim correct it; the model counts exactly, because it
// sees every map and unmap in a locked VMA, so PG_mlocked holds exactly when some
// VM_LOCKED VMA maps the folio (the invariant checker verifies it from the page tables).
#include <stdexcept>

#include "rmapkit/mm/machine.h"

namespace rmapkit::mm {

// One more locked mapping: the first makes the folio unevictable.
void machine::mlock_folio(folio& f) {
  if (f.pfn == _zero_pfn) return;
  if (f.mlock_count == UINT16_MAX) throw std::logic_error("mlock_folio: mlock_count overflow");
  if (f.mlock_count++ > 0) return;
  f.set(folio_flag::mlocked);
  count(vm_event::unevictable_pgs_mlocked);
  folio_set_lru_flag(f, folio_flag::active, false);
  folio_set_lru_flag(f, folio_flag::unevictable, true);
}

// One locked mapping fewer: the last one sends the folio back to the evictable lists.
void machine::munlock_folio(folio& f) {
  if (f.pfn == _zero_pfn) return;
  if (f.mlock_count == 0) throw std::logic_error("munlock_folio: mlock_count underflow");
  if (--f.mlock_count > 0) return;
  f.clear(folio_flag::mlocked);
  count(vm_event::unevictable_pgs_munlocked);
  folio_set_lru_flag(f, folio_flag::unevictable, false);
  count(vm_event::unevictable_pgs_rescued);
}

// mlock_pte_range(): VM_LOCKED of [start, end) just changed; its folios follow.
void machine::mlock_vma_pages_range(vm_area_struct& vma, vaddr_t start, vaddr_t end) {
  std::vector<pfn_t> present;
  vma.vm_mm->pgd.for_each(start, end, [&](vaddr_t, pte_t pte) {
    if (pte.present() && pte.pfn() != _zero_pfn) present.push_back(pte.pfn());
  });
  const bool lock = vma.vm_flags.has(vm_flag::locked);
  for (pfn_t pfn : present) lock ? mlock_folio(folio_of(pfn)) : munlock_folio(folio_of(pfn));
}

}  // namespace rmapkit::mm
