// Kernel: mm/vma.c and mm/mmap.c (v6.18): VMA allocation, linking into the mm and into
// i_mmap, split, merge of an existing range (vma_modify), munmap; mm/mprotect.c,
// mm/madvise.c and mm/mlock.c, which all change flags of a range through vma_modify.
#include <cerrno>
#include <stdexcept>
#include <vector>

#include "rmapkit/mm/machine.h"

namespace rmapkit::mm {

// ---- allocation and linking -----------------------------------------------------------------

vm_area_struct* machine::vm_area_alloc(mm_struct& mm) {
  auto* vma = _vmas.alloc();
  vma->vm_mm = &mm;
  return vma;
}

// Kernel: vm_area_dup(): every field but the AVC list; anon_vma is copied as a pointer.
vm_area_struct* machine::vm_area_dup(const vm_area_struct& src) {
  auto* vma = vm_area_alloc(*src.vm_mm);
  vma->vm_start = src.vm_start;
  vma->vm_end = src.vm_end;
  vma->vm_pgoff = src.vm_pgoff;
  vma->vm_flags = src.vm_flags;
  vma->vm_file = src.vm_file;
  vma->anon_vma = src.anon_vma;
  if (vma->vm_file) vma->vm_file->users++;
  return vma;
}

void machine::vm_area_free(vm_area_struct* vma) {
  if (vma->vm_mm && vma->vm_mm->mmap_cache == vma) vma->vm_mm->mmap_cache = nullptr;
  if (vma->vm_file) file_put(vma->vm_file);
  _vmas.free(vma);
}

void machine::vma_link_file(vm_area_struct& vma) {
  if (vma.vm_file) vma.vm_file->i_mmap.insert(vma);
}

void machine::vma_unlink_file(vm_area_struct& vma) {
  if (vma.vm_file) vma.vm_file->i_mmap.remove(vma);
}

void machine::vma_link(vm_area_struct* vma) {
  vma->vm_mm->mm_mt.emplace(vma->vm_start.value, vma);
  vma_link_file(*vma);
}

vm_area_struct* machine::vma_prev(const mm_struct& mm, const vm_area_struct& vma) {
  auto it = mm.mm_mt.find(vma.vm_start.value);
  if (it == mm.mm_mt.begin()) return nullptr;
  return std::prev(it)->second;
}

vm_area_struct* machine::vma_next(const mm_struct& mm, const vm_area_struct& vma) {
  auto it = mm.mm_mt.find(vma.vm_start.value);
  if (it == mm.mm_mt.end() || ++it == mm.mm_mt.end()) return nullptr;
  return it->second;
}

/// Changes a VMA's range and pgoff, keeping the mm's index and both interval trees
/// (i_mmap and every AVC of the VMA) in step (vma_prepare() / vma_complete()).
void machine::vma_set_range(vm_area_struct& vma, vaddr_t start, vaddr_t end, pgoff_t pgoff) {
  auto& mt = vma.vm_mm->mm_mt;
  anon_vma_interval_tree_update(vma, true);
  vma_unlink_file(vma);
  mt.erase(vma.vm_start.value);
  vma.vm_start = start;
  vma.vm_end = end;
  vma.vm_pgoff = pgoff;
  mt.emplace(start.value, &vma);
  vma_link_file(vma);
  anon_vma_interval_tree_update(vma, false);
}

// Kernel: __split_vma(). Returns the new VMA: [addr, end) unless @new_below, then [start, addr).
vm_area_struct* machine::split_vma(vm_area_struct& vma, vaddr_t addr, bool new_below) {
  auto* n = vm_area_dup(vma);
  const std::uint64_t delta = pages_between(vma.vm_start, addr);
  if (new_below) {
    n->vm_end = addr;
  } else {
    n->vm_start = addr;
    n->vm_pgoff = pgoff_t{vma.vm_pgoff.value + delta};
  }
  anon_vma_clone(*n, vma);  // an exact copy: both halves keep the same anon_vma and chain
  if (new_below) vma_set_range(vma, addr, vma.vm_end, pgoff_t{vma.vm_pgoff.value + delta});
  else vma_set_range(vma, vma.vm_start, addr, vma.vm_pgoff);
  n->anon_vma_chain.for_each([&](anon_vma_chain& avc) {
    avc.cached_start = n->vm_pgoff.value;
    avc.cached_last = n->last_pgoff();
    avc.anon_vma->rb_root.remove(avc);
    avc.anon_vma->rb_root.insert(avc);
  });
  vma_link(n);
  return n;
}

void machine::remove_vma(vm_area_struct* vma) {
  unlink_anon_vmas(*vma);
  vma_unlink_file(*vma);
  vma->vm_mm->mm_mt.erase(vma->vm_start.value);
  vm_area_free(vma);
}

// ---- merging ----------------------------------------------------------------------------

/// A VMA that has anon pages of a fork ancestor (more than one AVC) cannot share its
/// anon_vma with an unfaulted neighbour: the merged VMA's chain would be wrong for one half.
static bool has_uncowed_parents(const vm_area_struct& vma) {
  return vma.anon_vma && !vma.anon_vma_chain.singular();
}

// Kernel: is_mergeable_vma() + is_mergeable_anon_vma() + pgoff contiguity, for @a
// immediately followed by @b.
bool machine::can_merge(const vm_area_struct& a, const vm_area_struct& b) const {
  if (a.vm_end != b.vm_start || a.vm_file != b.vm_file) return false;
  constexpr std::uint64_t ignore = static_cast<std::uint64_t>(vm_flag::softdirty);
  if (((a.vm_flags.value() ^ b.vm_flags.value()) & ~ignore) != 0) return false;
  if (b.vm_pgoff.value != a.vm_pgoff.value + a.pages()) return false;
  if (a.anon_vma && b.anon_vma) return a.anon_vma == b.anon_vma;
  if (!a.anon_vma && !b.anon_vma) return true;
  return !has_uncowed_parents(a.anon_vma ? a : b);
}

vm_area_struct* machine::vma_merge_existing(vm_area_struct* vma) {
  auto& mm = *vma->vm_mm;
  vm_area_struct* prev = vma_prev(mm, *vma);
  vm_area_struct* next = vma_next(mm, *vma);
  bool left = prev && can_merge(*prev, *vma);
  bool right = next && can_merge(*vma, *next);
  // prev and next must also suit each other (three anon_vmas need not be compatible).
  if (left && right && prev->anon_vma && next->anon_vma && prev->anon_vma != next->anon_vma) right = false;
  // @a absorbs @b: the survivor takes b's anon_vma if it has none (dup_anon_vma()).
  auto merge = [&](vm_area_struct& a, vm_area_struct& b) {
    if (!a.anon_vma && b.anon_vma) {
      a.anon_vma = b.anon_vma;
      anon_vma_clone(a, b);
    }
    const vaddr_t end = b.vm_end;
    remove_vma(&b);
    vma_set_range(a, a.vm_start, end, a.vm_pgoff);
  };
  if (left) {
    merge(*prev, *vma);
    vma = prev;
  }
  if (right) merge(*vma, *next);
  return vma;
}

// Kernel: vma_modify_flags(): the range [start, end) of @vma gets @flags; split off what
// stays as it was, then merge with neighbours that now match.
vm_area_struct* machine::vma_modify_flags(vm_area_struct* vma, vaddr_t start, vaddr_t end, vm_flags_t flags) {
  if (vma->vm_flags == flags) return vma;
  if (vma->vm_start < start) vma = split_vma(*vma, start, false);
  if (end < vma->vm_end) split_vma(*vma, end, false);
  vma->vm_flags = flags;
  return vma_merge_existing(vma);
}

// ---- mmap / munmap --------------------------------------------------------------------------

int machine::do_mmap(mm_struct& mm, vaddr_t addr, std::uint64_t pages, int prot, bool shared, address_space* file,
                     pgoff_t pgoff) {
  const vaddr_t end = page_addr(addr, pages);
  if (pages == 0) return -EINVAL;
  if (find_vma(mm, addr)) return -EEXIST;  // MAP_FIXED_NOREPLACE
  auto it = mm.mm_mt.lower_bound(addr.value);
  if (it != mm.mm_mt.end() && it->second->vm_start < end) return -EEXIST;
  auto* vma = vm_area_alloc(mm);
  vma->vm_start = addr;
  vma->vm_end = end;
  vm_flags_t f = vm_flag::mayread | vm_flag::maywrite;
  f.set(vm_flag::mayexec).set(vm_flag::nohugepage);  // the kernel runner madvises NOHUGEPAGE
  f.assign(vm_flag::read, prot & PROT_READ_).assign(vm_flag::write, prot & PROT_WRITE_);
  if (shared) f.set(vm_flag::shared).set(vm_flag::mayshare);
  else if (prot & PROT_WRITE_) f.set(vm_flag::account);  // accountable_mapping()
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
  return 0;
}

/// Whether [start, end) is covered by VMAs without a gap.
static bool range_mapped(const mm_struct& mm, vaddr_t start, vaddr_t end) {
  vaddr_t a = start;
  while (a < end) {
    auto* v = machine::find_vma(mm, a);
    if (!v) return false;
    a = v->vm_end;
  }
  return true;
}

/// Calls f(vma, s, e) for each VMA overlapping [start, end) with the part [s, e) it
/// covers, walking by address: f may split, merge or free VMAs (as vma_modify does).
template <typename F>
static void for_each_vma_range(mm_struct& mm, vaddr_t start, vaddr_t end, F&& f) {
  vaddr_t a = start;
  while (a < end) {
    auto it = mm.mm_mt.upper_bound(a.value);
    if (it != mm.mm_mt.begin() && std::prev(it)->second->vm_end > a) --it;
    if (it == mm.mm_mt.end() || it->second->vm_start >= end) return;
    vm_area_struct* vma = it->second;
    const vaddr_t s = std::max(a, vma->vm_start), e = std::min(end, vma->vm_end);
    f(vma, s, e);
    a = e;
  }
}

/// The VMAs overlapping [start, end), in address order, split so that each lies inside.
static std::vector<vm_area_struct*> vmas_in(const mm_struct& mm, vaddr_t start, vaddr_t end) {
  std::vector<vm_area_struct*> out;
  auto it = mm.mm_mt.upper_bound(start.value);
  if (it != mm.mm_mt.begin()) --it;
  for (; it != mm.mm_mt.end() && it->second->vm_start < end; ++it)
    if (it->second->vm_end > start) out.push_back(it->second);
  return out;
}

int machine::munmap_range(mm_struct& mm, vaddr_t start, vaddr_t end) {
  for (auto* v : vmas_in(mm, start, end)) {
    vm_area_struct* vma = v;
    if (vma->vm_start < start) vma = split_vma(*vma, start, false);
    if (end < vma->vm_end) split_vma(*vma, end, false);
    zap_pte_range(*vma, vma->vm_start, vma->vm_end);
    remove_vma(vma);  // free_pgtables(): the rmap objects go after the PTEs that they find
  }
  mm.pgd.free_empty(start, end);
  return 0;
}

int machine::do_munmap(mm_struct& mm, vaddr_t addr, std::uint64_t pages) {
  return munmap_range(mm, addr, page_addr(addr, pages));
}

// ---- mprotect, madvise, mlock -------------------------------------------------------------

int machine::do_mprotect(mm_struct& mm, vaddr_t addr, std::uint64_t pages, int prot) {
  const vaddr_t end = page_addr(addr, pages);
  if (!range_mapped(mm, addr, end)) return -ENOMEM;
  for_each_vma_range(mm, addr, end, [&](vm_area_struct* vma, vaddr_t s, vaddr_t e) {
    vm_flags_t f = vma->vm_flags;
    f.assign(vm_flag::read, prot & PROT_READ_).assign(vm_flag::write, prot & PROT_WRITE_);
    // mprotect_fixup() leaves a VMA whose flags do not change alone: no accounting change,
    // no split, no merge attempt. An unfaulted VMA mprotected to the protection it has keeps
    // VM_ACCOUNT, and so does not merge with a neighbour that lost it (scenario 59).
    if (f == vma->vm_flags) return;
    // mprotect_fixup(): private memory that becomes writable is charged; unfaulted
    // private anonymous memory that stops being writable is not any more.
    if (f.has(vm_flag::write)) {
      if (!vma->vm_flags.has(vm_flag::account) && !vma->vm_flags.has(vm_flag::write) &&
          !vma->vm_flags.has(vm_flag::shared))
        f.set(vm_flag::account);
    } else if (vma->vm_flags.has(vm_flag::account) && vma->is_anonymous() && !vma->anon_vma) {
      f.clear(vm_flag::account);
    }
    if (!f.has(vm_flag::write)) {
      // change_protection(): no PTE of the range stays writable.
      mm.pgd.for_each(s, e, [&](vaddr_t a, pte_t pte) {
        if (pte.present() && pte.write()) mm.pgd.set(a, pte.wrprotect());
      });
    }
    const bool populate = (vma->vm_flags.value() & (vm_flags_t{vm_flag::write} | vm_flag::shared | vm_flag::locked).value()) ==
                              static_cast<std::uint64_t>(vm_flag::locked) &&
                          f.has(vm_flag::write);
    vma = vma_modify_flags(vma, s, e, f);
    // mprotect_fixup(): a private mlocked VMA that becomes writable breaks COW now, so
    // that a later write to locked memory does not fault.
    if (populate) populate_vma_page_range(*vma, s, e);
  });
  return 0;
}

int machine::do_madvise(mm_struct& mm, vaddr_t addr, std::uint64_t pages, madv advice) {
  const vaddr_t end = page_addr(addr, pages);
  if (!range_mapped(mm, addr, end)) return -ENOMEM;
  auto vmas = vmas_in(mm, addr, end);
  // Refusals come before any change (madvise_walk_vmas() checks each VMA as it goes;
  // the scenario rules guarantee a refused range is refused on its first VMA).
  for (auto* vma : vmas) {
    if ((advice == madv::dontneed || advice == madv::pageout) && vma->vm_flags.has(vm_flag::locked)) return -EINVAL;
    if (advice == madv::wipeonfork && (vma->vm_file || vma->vm_flags.has(vm_flag::shared))) return -EINVAL;
  }
  for_each_vma_range(mm, addr, end, [&](vm_area_struct* vma, vaddr_t s, vaddr_t e) {
    vm_flags_t f = vma->vm_flags;
    switch (advice) {
      case madv::dontneed: zap_pte_range(*vma, s, e); return;
      case madv::pageout: madvise_pageout(*vma, s, e); return;
      case madv::dontfork: f.set(vm_flag::dontcopy); break;
      case madv::dofork: f.clear(vm_flag::dontcopy); break;
      case madv::wipeonfork: f.set(vm_flag::wipeonfork); break;
      case madv::keeponfork: f.clear(vm_flag::wipeonfork); break;
      case madv::mergeable:
        // ksm_madvise(): shared mappings are accepted and left alone.
        if (vma->vm_flags.has(vm_flag::shared) || vma->vm_flags.has(vm_flag::mayshare)) return;
        f.set(vm_flag::mergeable);
        ksm_enter(mm);
        break;
      case madv::unmergeable:
        if (!vma->vm_flags.has(vm_flag::mergeable)) return;
        unmerge_ksm_pages(*vma, s, e);
        f.clear(vm_flag::mergeable);
        break;
    }
    vma_modify_flags(vma, s, e, f);
  });
  return 0;
}

int machine::do_mlock(mm_struct& mm, vaddr_t addr, std::uint64_t pages, bool lock) {
  const vaddr_t end = page_addr(addr, pages);
  if (!range_mapped(mm, addr, end)) return -ENOMEM;
  for_each_vma_range(mm, addr, end, [&](vm_area_struct* vma, vaddr_t s, vaddr_t e) {
    vm_flags_t f = vma->vm_flags;
    const bool changed = f.has(vm_flag::locked) != lock;
    f.assign(vm_flag::locked, lock);
    vma = vma_modify_flags(vma, s, e, f);
    if (changed) mlock_vma_pages_range(*vma, s, e);
  });
  if (!lock) return 0;
  // __mm_populate(): fault the whole range in, VMA by VMA.
  for_each_vma_range(mm, addr, end,
                     [&](vm_area_struct* vma, vaddr_t s, vaddr_t e) { populate_vma_page_range(*vma, s, e); });
  return 0;
}

}  // namespace rmapkit::mm
