// Kernel: mm/page_vma_mapped.c: page_vma_mapped_walk(), which every rmap_one() starts
// with. A walk's candidate VMA only may map the folio (an anon_vma covers every VMA that
// could have inherited it, an interval tree every VMA whose range covers the offset);
// this is where the page table says whether it does. The walk is one lookup of the folio's
// first page in the VMA: a PTE, or a huge PMD (page_table::get() gives a PMD's page), which
// answers for every page of a PMD-mapped folio. Its counters are what `rmapkit compare` reports as
// PTEs examined and misses: the cost of candidates that do not map the page.
#include <cstdint>

#include "rmap_walk.h"
#include "rmapkit/mm/machine.h"

namespace rmapkit::mm {

bool machine::page_vma_mapped(const folio& f, const vm_area_struct& vma, vaddr_t addr) {
  // The lock of the PTE page that holds @addr: one per mm and 2 MiB of address space.
  const rmap_lock ptl(*this, rmap_lock_class::ptl, reinterpret_cast<std::uintptr_t>(vma.vm_mm) + (addr.value >> 21));
  _walk.ptes_examined++;
  pte_t pte = vma.vm_mm->pgd.get(addr);
  bool hit = pte.present() && pte.pfn() == f.pfn;
  if (!hit) _walk.misses++;  // the walk visited a VMA that does not map the folio
  rmap_trace(*this,
             [&] { return walk_step{.what = walk_step::kind::pte, .vma = &vma, .addr = addr, .pte = pte, .ok = hit}; });
  return hit;
}

}  // namespace rmapkit::mm
