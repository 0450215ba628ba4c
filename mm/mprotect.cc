// Kernel: mm/mprotect.c (v6.18): mprotect_fixup()'s accounting (VM_ACCOUNT), the
// write-protection of the PTEs, and the flags change through vma_modify_flags().
#include <cerrno>

#include "internal.h"

namespace rmapkit::mm {

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
    if (!f.has(vm_flag::write)) {
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
