// Kernel: mm/vma.c (v6.18): VMA allocation, linking into the mm and into i_mmap, split,
// and merge of an existing range (vma_modify_flags(), the path mprotect, madvise and mlock
// take to change the flags of a range).

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
  if (!vma.vm_file) return;
  vma.vm_file->i_mmap.insert(vma);
  _file->link(vma);
}

void machine::vma_unlink_file(vm_area_struct& vma) {
  if (!vma.vm_file) return;
  _file->unlink(vma);
  vma.vm_file->i_mmap.remove(vma);
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
  if (vma.vm_file) {
    _file->range_changed(vma, true);
    vma.vm_file->i_mmap.remove(vma);
  }
  mt.erase(vma.vm_start.value);
  vma.vm_start = start;
  vma.vm_end = end;
  vma.vm_pgoff = pgoff;
  mt.emplace(start.value, &vma);
  if (vma.vm_file) {
    vma.vm_file->i_mmap.insert(vma);
    _file->range_changed(vma, false);
  }
  anon_vma_interval_tree_update(vma, false);
}

// Kernel: __split_vma(). Returns the new VMA: [addr, end) unless @new_below, then [start, addr).
vm_area_struct* machine::split_vma(vm_area_struct& vma, vaddr_t addr, bool new_below) {
  vma_adjust_trans_huge(vma, addr);
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
  vma_link(n);
  return n;
}

void machine::remove_vma(vm_area_struct* vma) {
  vma->vm_mm->mm_mt.erase(vma->vm_start.value);
  free_vma(vma);
}

void machine::free_vma(vm_area_struct* vma) {
  unlink_anon_vmas(*vma);
  vma_unlink_file(*vma);
  vm_area_free(vma);
}

// ---- merging ----------------------------------------------------------------------------

/// A VMA that has anon pages of a fork ancestor (more than one AVC: vma_is_fork_child())
/// cannot share its anon_vma with an unfaulted neighbour: the merged VMA's chain would be
/// wrong for one half.
static bool has_uncowed_parents(const vm_area_struct& vma) { return vma.anon_vma && !vma.anon_vma_chain.singular(); }

// Kernel: is_mergeable_vma() + is_mergeable_anon_vma() + pgoff contiguity, for @a
// immediately followed by @b.
bool machine::can_merge(const merge_side& a, const merge_side& b) const {
  if (a.end != b.start || a.file != b.file) return false;
  constexpr std::uint64_t ignore = static_cast<std::uint64_t>(vm_flag::softdirty);
  if (((a.flags.value() ^ b.flags.value()) & ~ignore) != 0) return false;
  if (b.pgoff.value != a.pgoff.value + pages_between(a.start, a.end)) return false;
  const anon_vma* av = a.vma->anon_vma;
  const anon_vma* bv = b.vma->anon_vma;
  if (av && bv) return av == bv;
  if (!av && !bv) return true;
  return !has_uncowed_parents(av ? *a.vma : *b.vma);
}

bool machine::can_merge(const vm_area_struct& a, const vm_area_struct& b) const {
  return can_merge(side_of(a), side_of(b));
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
  if (right && !left) {
    // vma_merge_new_range() and vma_merge_existing_range() with next alone: next grows down
    // over the range, which goes; no chain is cloned unless next has no anon_vma of its own.
    if (!next->anon_vma && vma->anon_vma) {
      next->anon_vma = vma->anon_vma;
      anon_vma_clone(*next, *vma);
    }
    const vaddr_t start = vma->vm_start;
    const pgoff_t pgoff = vma->vm_pgoff;
    remove_vma(vma);
    vma_set_range(*next, start, next->vm_end, pgoff);
    return next;
  }
  if (right) merge(*vma, *next);
  return vma;
}

// Kernel: vma_merge_existing_range()'s partial cases. When [start, end) is one end of @vma
// and, with @flags, would join the neighbour at that end, the boundary between the two moves:
// no VMA is split off (so no anon_vma_chain is cloned for it), the neighbour grows over the
// range and @vma shrinks. The neighbour takes @vma's anon_vma if it has none (dup_anon_vma()).
vm_area_struct* machine::vma_shift_boundary(vm_area_struct& vma, vaddr_t start, vaddr_t end, vm_flags_t flags) {
  const bool head = start == vma.vm_start && end < vma.vm_end;
  const bool tail = end == vma.vm_end && start > vma.vm_start;
  vm_area_struct* nb = head ? vma_prev(*vma.vm_mm, vma) : tail ? vma_next(*vma.vm_mm, vma) : nullptr;
  if (!nb) return nullptr;
  // The range as a VMA of its own would be: can_merge() asks the questions of it.
  const pgoff_t part_pgoff{vma.vm_pgoff.value + pages_between(vma.vm_start, start)};
  const merge_side part{start, end, vma.vm_file, flags, part_pgoff, &vma};
  if (head ? !can_merge(side_of(*nb), part) : !can_merge(part, side_of(*nb))) return nullptr;
  if (!nb->anon_vma && vma.anon_vma) {
    nb->anon_vma = vma.anon_vma;
    anon_vma_clone(*nb, vma);
  }
  vma_adjust_trans_huge(vma, head ? end : start);  // the new boundary
  const std::uint64_t moved = pages_between(start, end);
  if (head) {
    vma_set_range(vma, end, vma.vm_end, pgoff_t{vma.vm_pgoff.value + moved});
    vma_set_range(*nb, nb->vm_start, end, nb->vm_pgoff);
  } else {
    vma_set_range(vma, vma.vm_start, start, vma.vm_pgoff);
    vma_set_range(*nb, start, nb->vm_end, pgoff_t{nb->vm_pgoff.value - moved});
  }
  return nb;
}

// Kernel: vma_modify_flags(): the range [start, end) of @vma gets @flags: the boundary moves
// when the range joins a neighbour (vma_shift_boundary()); else what stays as it was is split
// off, and the range merges with neighbours that now match.
vm_area_struct* machine::vma_modify_flags(vm_area_struct* vma, vaddr_t start, vaddr_t end, vm_flags_t flags) {
  if (vma->vm_flags == flags) return vma;
  if (auto* joined = vma_shift_boundary(*vma, start, end, flags)) return joined;
  if (vma->vm_start < start) vma = split_vma(*vma, start, false);
  if (end < vma->vm_end) split_vma(*vma, end, false);
  vma->vm_flags = flags;
  return vma_merge_existing(vma);
}

/// Two VMAs whose anon_vma could be one: adjacent, same file, flags equal but for the
/// access bits, and linear page offsets (anon_vma_compatible()).
static bool anon_vma_compatible(const vm_area_struct& a, const vm_area_struct& b) {
  constexpr std::uint64_t ignore = static_cast<std::uint64_t>(vm_flag::read) |
                                   static_cast<std::uint64_t>(vm_flag::write) |
                                   static_cast<std::uint64_t>(vm_flag::exec) |
                                   static_cast<std::uint64_t>(vm_flag::softdirty);
  return a.vm_end == b.vm_start && a.vm_file == b.vm_file &&
         ((a.vm_flags.value() ^ b.vm_flags.value()) & ~ignore) == 0 && b.vm_pgoff.value == a.vm_pgoff.value + a.pages();
}

/// A neighbour's anon_vma, when it is compatible and not inherited through fork (its
/// chain is a single AVC): then both VMAs can share it and still have identical chains.
anon_vma* machine::find_mergeable_anon_vma(vm_area_struct& vma) {
  auto reusable = [](const vm_area_struct& old, const vm_area_struct& a, const vm_area_struct& b) -> anon_vma* {
    if (anon_vma_compatible(a, b) && old.anon_vma_chain.singular()) return old.anon_vma;
    return nullptr;
  };
  if (auto* next = vma_next(*vma.vm_mm, vma))
    if (auto* av = reusable(*next, vma, *next)) return av;
  if (auto* prev = vma_prev(*vma.vm_mm, vma))
    if (auto* av = reusable(*prev, *prev, vma)) return av;
  return nullptr;
}

}  // namespace rmapkit::mm
