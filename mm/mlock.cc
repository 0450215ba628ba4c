// Kernel: mm/mlock.c: mlock()/munlock() of a range (do_mlock()) and what it does to the
// folios. A folio mapped by a VM_LOCKED VMA is PG_mlocked and sits on the unevictable
// list, where reclaim never looks. The kernel keeps an approximate
// folio->mlock_count and lets reclaim correct it; the model counts exactly, because it
// sees every map and unmap in a locked VMA, so PG_mlocked holds exactly when some
// VM_LOCKED VMA maps the folio (the invariant checker verifies it from the page tables).
#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <vector>

#include "internal.h"

namespace rmapkit::mm {

// The CPU's mlock folio batch (mlock_fbatch): mlock_folio() and munlock_folio() queue
// the folio there, and the folio's LRU state follows only when the batch drains, when it
// fills or at lru_add_drain() (the kernel runner drains before every statement). The model
// moves the folio at once; the batch only says which folios the kernel has not moved yet,
// which decides what an access in the same system call does (folio_mark_accessed()).
void machine::mlock_batch_add(const folio& f, bool newly_mlocked) {
  ++_mlock_batch_size;
  if (newly_mlocked) _mlock_batch_new.push_back({f.pfn, f.test(folio_flag::active)});
  if (_mlock_batch_size >= FOLIO_BATCH_SIZE) lru_add_drain();
}

std::optional<bool> machine::mlock_pending(const folio& f) const {
  auto it = std::find_if(_mlock_batch_new.begin(), _mlock_batch_new.end(),
                         [&](const pending_mlock& p) { return p.pfn == f.pfn; });
  if (it == _mlock_batch_new.end()) return std::nullopt;
  return it->was_active;
}

void machine::lru_add_drain() {
  _mlock_batch_size = 0;
  _mlock_batch_new.clear();
}

// One more locked mapping: the first makes the folio unevictable. A large folio drains the
// batch at once, as the kernel's mlock_folio() does for one.
void machine::mlock_folio(folio& f) {
  if (f.pfn == _zero_pfn) return;
  if (f.mlock_count == UINT16_MAX) throw std::logic_error("mlock_folio: mlock_count overflow");
  mlock_batch_add(f, f.mlock_count == 0);
  if (f.is_large()) lru_add_drain();
  if (f.mlock_count++ > 0) return;
  f.set(folio_flag::mlocked);
  count(vm_event::unevictable_pgs_mlocked);
  folio_set_lru_flag(f, folio_flag::active, false);
  folio_set_lru_flag(f, folio_flag::unevictable, true);
}

// One locked mapping fewer: the last one sends the folio back to the evictable lists. A
// large folio's count is the kernel's approximate one: it is locked once per whole mapping
// but unlocked for every part that goes, so it stops at zero rather than underflow.
void machine::munlock_folio(folio& f) {
  if (f.pfn == _zero_pfn) return;
  mlock_batch_add(f, false);
  if (f.is_large()) {
    lru_add_drain();
    if (f.mlock_count == 0) return;
  }
  if (f.mlock_count == 0) throw std::logic_error("munlock_folio: mlock_count underflow");
  if (--f.mlock_count > 0) return;
  f.clear(folio_flag::mlocked);
  count(vm_event::unevictable_pgs_munlocked);
  folio_set_lru_flag(f, folio_flag::unevictable, false);
  count(vm_event::unevictable_pgs_rescued);
}

// mlock_pte_range(): VM_LOCKED of [start, end) just changed; its folios follow. A large
// folio counts once, not per page: it is locked only when every page of it is mapped
// inside [start, end) (allow_mlock_munlock()), and unlocked when any part of it is there.
void machine::mlock_vma_pages_range(vm_area_struct& vma, vaddr_t start, vaddr_t end) {
  std::vector<pfn_t> present;
  vma.vm_mm->pgd.for_each(start, end, [&](vaddr_t, pte_t pte) {
    if (pte.present() && pte.pfn() != _zero_pfn) present.push_back(pte.pfn());
  });
  const bool lock = vma.vm_flags.has(vm_flag::locked);
  // A huge PMD maps its whole folio, inside the range (a VMA split would have split it);
  // the huge zero folio is never mlocked.
  vma.vm_mm->pgd.for_each_huge(start, end, [&](vaddr_t, pte_t pmd) {
    if (pmd.pfn() == HUGE_ZERO_PFN) return;
    lock ? mlock_folio(folio_of(pmd.pfn())) : munlock_folio(folio_of(pmd.pfn()));
  });
  for (std::size_t i = 0; i < present.size(); ++i) {
    folio& page = folio_of(present[i]);
    if (!page.is_large()) {
      lock ? mlock_folio(page) : munlock_folio(page);
      continue;
    }
    folio& head = page_folio(present[i]);
    std::uint64_t mapped = 1;  // this folio's pages among the PTEs that follow
    while (i + 1 < present.size() && folio_of(present[i + 1]).head_pfn() == head.pfn) {
      ++mapped;
      ++i;
    }
    if (!lock) munlock_folio(head);
    else if (mapped == head.nr_pages()) mlock_folio(head);
  }
  // The kernel drains the batches after the walk: these folios are unevictable (or not)
  // before mlock's population touches them.
  lru_add_drain();
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

// Kernel: apply_mlockall_flags(). MCL_FUTURE alone touches no VMA; MCL_CURRENT (or
// munlockall(), which is neither) sets or clears VM_LOCKED on every VMA, and what it locked
// is faulted in (mm_populate() over the whole address space; a PROT_NONE VMA is locked but
// has nothing to fault).
void machine::do_mlockall(mm_struct& mm, bool current, bool future) {
  mm.def_flags.assign(vm_flag::locked, future);
  if (future && !current) return;
  std::vector<std::pair<vaddr_t, vaddr_t>> ranges;
  for (const auto& [start, vma] : mm.mm_mt) ranges.emplace_back(vma->vm_start, vma->vm_end);
  for (auto [s, e] : ranges) do_mlock(mm, s, pages_between(s, e), current);
}

}  // namespace rmapkit::mm
