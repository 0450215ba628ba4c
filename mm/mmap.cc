// Kernel: mm/mmap.c (v6.18): do_mmap() of a fixed range, munmap, find_vma(), dup_mmap()
// at fork, and exit_mmap() (the machine's exit_mm()).
#include <cerrno>
#include <vector>

#include "internal.h"

namespace rmapkit::mm {

vm_area_struct* machine::find_vma_in_tree(const mm_struct& mm, vaddr_t addr) {
  auto it = mm.mm_mt.upper_bound(addr.value);
  if (it == mm.mm_mt.begin()) return nullptr;
  --it;
  if (addr >= it->second->vm_end) return nullptr;
  mm.mmap_cache = it->second;
  return it->second;
}

int machine::do_mmap(mm_struct& mm, vaddr_t addr, std::uint64_t pages, int prot, bool shared, address_space* file,
                     pgoff_t pgoff, mmap_flags flags) {
  const vaddr_t end = page_addr(addr, pages);
  if (pages == 0) return -EINVAL;
  if (flags.how == map_fixed::replace) {
    // MAP_FIXED: what was mapped in the range goes first, its pages and page tables with it
    // (__mmap_region() gathers and unmaps the old VMAs before it links the new one).
    munmap_range(mm, addr, end);
  } else {
    if (find_vma(mm, addr)) return -EEXIST;  // MAP_FIXED_NOREPLACE
    auto it = mm.mm_mt.lower_bound(addr.value);
    if (it != mm.mm_mt.end() && it->second->vm_start < end) return -EEXIST;
  }
  auto* vma = vm_area_alloc(mm);
  vma->vm_start = addr;
  vma->vm_end = end;
  vm_flags_t f = vm_flag::mayread | vm_flag::maywrite;
  f.set(vm_flag::mayexec).assign(vm_flag::nohugepage, flags.nohugepage);
  f.assign(vm_flag::read, prot & PROT_READ_).assign(vm_flag::write, prot & PROT_WRITE_);
  f.assign(vm_flag::exec, prot & PROT_EXEC_);
  f.assign(vm_flag::noreserve, flags.noreserve);
  if (shared) f.set(vm_flag::shared).set(vm_flag::mayshare);
  else if ((prot & PROT_WRITE_) && !flags.noreserve) f.set(vm_flag::account);  // accountable_mapping()
  const bool locked = mm.def_flags.has(vm_flag::locked);                       // mlockall(MCL_FUTURE)
  f.assign(vm_flag::locked, locked);
  vma->vm_flags = f;
  if (shared && !file) {
    // MAP_SHARED|MAP_ANONYMOUS is a shmem file of its own (shmem_zero_setup()).
    file = _files.alloc();
    file->name = "dev/zero";
    file->anon_shared = true;
    file->size_pages = pages;
    file->users = 0;
    pgoff = pgoff_t{0};
  }
  vma->vm_file = file;
  if (file) file->users++;
  // A private anonymous VMA's pgoff is its address in pages (do_mmap()).
  vma->vm_pgoff = file ? pgoff : pgoff_t{addr.value >> PAGE_SHIFT};
  vma_link(vma);
  // vma_merge_new_range(): the new VMA has no anon_vma yet, so it joins a neighbour under the
  // rules an existing VMA without one meets (equal flags and file, linear pgoff, a neighbour
  // whose anon_vma is not inherited through fork). A new shared anonymous mapping is a file
  // of its own and never joins anything.
  vma_merge_existing(vma);
  // vm_mmap_pgoff(): a locked mapping is faulted in at once (mm_populate()).
  if (locked)
    for_each_vma_range(mm, addr, end,
                       [&](vm_area_struct* v, vaddr_t s, vaddr_t e) { populate_vma_page_range(*v, s, e); });
  return 0;
}

int machine::munmap_range(mm_struct& mm, vaddr_t start, vaddr_t end) {
  for (auto* v : vmas_in(mm, start, end)) {
    vm_area_struct* vma = v;
    if (vma->vm_start < start) vma = split_vma(*vma, start, false);
    if (end < vma->vm_end) split_vma(*vma, end, false);
    zap_pte_range(*vma, vma->vm_start, vma->vm_end);
    remove_vma(vma);  // free_pgtables(): the rmap objects go after the PTEs that they find
  }
  free_pgtables(mm, start, end);
  return 0;
}

int machine::do_munmap(mm_struct& mm, vaddr_t addr, std::uint64_t pages) {
  return munmap_range(mm, addr, page_addr(addr, pages));
}

// Kernel: exit_mmap(): at exit the page tables are zapped, then every VMA is freed.
void machine::exit_mm(mm_struct* mm) {
  std::vector<vm_area_struct*> vmas;
  for (auto& [start, vma] : mm->mm_mt) vmas.push_back(vma);
  for (auto* vma : vmas) zap_pte_range(*vma, vma->vm_start, vma->vm_end);  // unmap_vmas()
  // ksmd drops the mm's rmap_items after its pages are gone (its next visit of the
  // mm_slot): a KSM page that this mm alone mapped is then found stale.
  ksm_exit(*mm);
  // free_pgtables(): the tables under each VMA, by its range. Left to the page table's
  // destructor they would cost a scan of every 512-entry directory instead.
  // The VMA tree goes whole, as exit_mmap() destroys the maple tree at once: erasing VMA by
  // VMA would rebalance it each time (a tenth of exit for hundreds of VMAs).
  mm->mm_mt.clear();
  for (auto* vma : vmas) {
    mm->pgd.free_empty(vma->vm_start, vma->vm_end);
    free_vma(vma);
  }
  _mms[mm->mms_index] = nullptr;
  if (2 * ++_mms_exited > _mms.size()) compact_mms();
  _mm_slab.free(mm);
}

// Kernel: dup_mmap(): at fork, @mm gets a copy of every VMA of @oldmm but the
// MADV_DONTFORK ones, with its anon_vma chain (anon_vma_fork()), its place in i_mmap and,
// where there is anonymous memory, its page tables.
void machine::dup_mmap(mm_struct& mm, mm_struct& oldmm) {
  if (oldmm.ksm_registered) ksm_enter(mm);  // ksm_fork(): MMF_VM_MERGEABLE is inherited
  for (auto& [start, mpnt] : oldmm.mm_mt) {
    if (mpnt->vm_flags.has(vm_flag::dontcopy)) continue;
    auto* tmp = vm_area_dup(*mpnt);
    tmp->vm_mm = &mm;
    tmp->vm_flags.clear(vm_flag::locked);                                 // mlock is not inherited
    if (tmp->vm_flags.has(vm_flag::wipeonfork)) tmp->anon_vma = nullptr;  // the child sees fresh memory
    else anon_vma_fork(*tmp, *mpnt);
    // The child goes right after its parent in i_mmap, so a walk sees the parent first.
    if (tmp->vm_file) {
      tmp->vm_file->i_mmap.insert_after(*tmp, *mpnt);
      _file->link_after(*tmp, *mpnt);
    }
    mm.mm_mt.emplace_hint(mm.mm_mt.end(), tmp->vm_start.value, tmp);  // in address order: no search
    // vma_needs_copy(): only VMAs with an anon_vma have PTEs worth copying; the rest
    // refault from the page cache.
    if (!tmp->vm_flags.has(vm_flag::wipeonfork) && mpnt->anon_vma) copy_page_range(*tmp, *mpnt);
  }
}

}  // namespace rmapkit::mm
