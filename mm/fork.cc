// Kernel: kernel/fork.c (v6.18): mm_alloc(), and dup_mm() with the VMA copy of dup_mmap()
// (long in kernel/fork.c; exit_mmap() is in mmap.cc).
#include <string>
#include <utility>
#include <vector>

#include "rmapkit/mm/machine.h"

namespace rmapkit::mm {

mm_struct* machine::mm_alloc(std::string name) {
  auto* mm = _mm_slab.alloc();
  mm->id = ++_mm_serial;
  mm->name = std::move(name);
  if (_anon->wants_pte_events()) mm->pgd.observe(this, mm);
  _mms.push_back(mm);
  return mm;
}

mm_struct* machine::dup_mm(mm_struct& parent, std::string name) {
  mm_struct* child = mm_alloc(std::move(name));
  if (parent.ksm_registered) ksm_enter(*child);  // ksm_fork(): MMF_VM_MERGEABLE is inherited
  for (auto& [start, mpnt] : parent.mm_mt) {
    if (mpnt->vm_flags.has(vm_flag::dontcopy)) continue;
    auto* tmp = vm_area_dup(*mpnt);
    tmp->vm_mm = child;
    tmp->vm_flags.clear(vm_flag::locked);                                 // mlock is not inherited
    if (tmp->vm_flags.has(vm_flag::wipeonfork)) tmp->anon_vma = nullptr;  // the child sees fresh memory
    else anon_vma_fork(*tmp, *mpnt);
    // The child goes right after its parent in i_mmap, so a walk sees the parent first.
    if (tmp->vm_file) tmp->vm_file->i_mmap.insert_after(*tmp, *mpnt);
    child->mm_mt.emplace(tmp->vm_start.value, tmp);
    // vma_needs_copy(): only VMAs with an anon_vma have PTEs worth copying; the rest
    // refault from the page cache.
    if (!tmp->vm_flags.has(vm_flag::wipeonfork) && mpnt->anon_vma) copy_page_range(*tmp, *mpnt);
  }
  return child;
}

}  // namespace rmapkit::mm
