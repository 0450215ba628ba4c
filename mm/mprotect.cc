// Kernel: mm/mprotect.c (v6.18): mprotect_fixup()'s accounting (VM_ACCOUNT), the
// write-protection of the PTEs, and the flags change through vma_modify_flags().
#include <cerrno>
#include <utility>
#include <vector>

#include "internal.h"

namespace rmapkit::mm {

// change_pte_range() takes the PTEs of a large folio that follow each other, page after
// page, with the same write bit (FPB_RESPECT_WRITE), as one batch (mprotect_folio_pte_batch()):
// modify_prot_start_ptes() gathers their accessed and dirty bits, and the commit writes the
// gathered bits into every one of them. So after an mprotect every page of such a run is
// young, and dirty, when one of them was; a page a COW reuse made writable is a batch of its
// own (found by the anon-thp smaps campaign, corpus v2/44).
void machine::merge_young_dirty_of_batches(mm_struct& mm, vaddr_t start, vaddr_t end) {
  std::vector<std::pair<vaddr_t, pte_t>> run;  // the current batch
  auto flush = [&] {
    bool young = false, dirty = false;
    for (const auto& [a, pte] : run) {
      young |= pte.young();
      dirty |= pte.dirty();
    }
    for (const auto& [a, pte] : run) {
      pte_t now = young ? pte.mkyoung() : pte;
      mm.pgd.set(a, dirty ? now.mkdirty() : now);
    }
    run.clear();
  };
  mm.pgd.for_each(start, end, [&](vaddr_t a, pte_t pte) {
    const bool large = pte.present() && pte.pfn() != _zero_pfn && folio_of(pte.pfn()).is_large();
    if (!run.empty()) {
      const auto& [la, lpte] = run.back();
      const bool follows = large && a == page_addr(la, 1) && pte.pfn().value == lpte.pfn().value + 1 &&
                           pte.write() == lpte.write() &&
                           folio_of(pte.pfn()).head_pfn() == folio_of(lpte.pfn()).head_pfn();
      if (!follows) flush();
    }
    if (large) run.emplace_back(a, pte);
  });
  flush();
}

int machine::do_mprotect(mm_struct& mm, vaddr_t addr, std::uint64_t pages, int prot) {
  const vaddr_t end = page_addr(addr, pages);
  if (!range_mapped(mm, addr, end)) return -ENOMEM;
  for_each_vma_range(mm, addr, end, [&](vm_area_struct* vma, vaddr_t s, vaddr_t e) {
    vm_flags_t f = vma->vm_flags;
    f.assign(vm_flag::read, prot & PROT_READ_).assign(vm_flag::write, prot & PROT_WRITE_);
    f.assign(vm_flag::exec, prot & PROT_EXEC_);
    // mprotect_fixup() leaves a VMA whose flags do not change alone: no accounting change,
    // no split, no merge attempt. An unfaulted VMA mprotected to the protection it has keeps
    // VM_ACCOUNT, and so does not merge with a neighbour that lost it (scenario 59).
    if (f == vma->vm_flags) return;
    // mprotect_fixup(): private memory that becomes writable is charged; unfaulted
    // private anonymous memory that stops being writable is not any more.
    if (f.has(vm_flag::write)) {
      if (!vma->vm_flags.has(vm_flag::account) && !vma->vm_flags.has(vm_flag::write) &&
          !vma->vm_flags.has(vm_flag::shared) && !vma->vm_flags.has(vm_flag::noreserve))
        f.set(vm_flag::account);
    } else if (vma->vm_flags.has(vm_flag::account) && vma->is_anonymous() && !vma->anon_vma) {
      f.clear(vm_flag::account);
    }
    // The kernel splits the VMA first (vma_modify_flags()), and with it a huge PMD across
    // either end; the model changes the entries first, so it splits those PMDs here.
    vma_adjust_trans_huge(*vma, s);
    vma_adjust_trans_huge(*vma, e);
    merge_young_dirty_of_batches(mm, s, e);
    if (!f.has(vm_flag::write)) {
      // change_huge_pmd(): a huge PMD inside the range keeps its size.
      mm.pgd.for_each_huge(s, e, [&](vaddr_t h, pte_t pmd) {
        if (pmd.write()) mm.pgd.set_huge_pmd(h, pmd.wrprotect());
      });
      // change_protection(): no PTE of the range stays writable.
      mm.pgd.for_each(s, e, [&](vaddr_t a, pte_t pte) {
        if (pte.present() && pte.write()) mm.pgd.set(a, pte.wrprotect());
      });
    } else if (f.has(vm_flag::shared)) {
      // A shared mapping that needs no write notification (shmem) has a writable page
      // protection, so its PTEs become writable at once, clean ones too: a later write
      // dirties the PTE without a fault and leaves the folio's dirty flag alone.
      mm.pgd.for_each(s, e, [&](vaddr_t a, pte_t pte) {
        if (pte.present() && !pte.write()) mm.pgd.set(a, pte.mkwrite());
      });
      mm.pgd.for_each_huge(s, e, [&](vaddr_t h, pte_t pmd) {
        if (!pmd.write()) mm.pgd.set_huge_pmd(h, pmd.mkwrite());
      });
    }
    const std::uint64_t wsl = (vm_flags_t{vm_flag::write} | vm_flag::shared | vm_flag::locked).value();
    const bool populate = (vma->vm_flags.value() & wsl) == static_cast<std::uint64_t>(vm_flag::locked) &&
                          f.has(vm_flag::write);
    vma = vma_modify_flags(vma, s, e, f);
    // mprotect_fixup(): a private mlocked VMA that becomes writable breaks COW now, so
    // that a later write to locked memory does not fault.
    if (populate) populate_vma_page_range(*vma, s, e);
  });
  return 0;
}

}  // namespace rmapkit::mm
