// Kernel: mm/madvise.c (v6.18): MADV_DONTNEED, MADV_PAGEOUT, the fork flags
// (DONTFORK/DOFORK, WIPEONFORK/KEEPONFORK), KSM's MERGEABLE/UNMERGEABLE, and the flags
// that only split and merge VMAs and decide recency (DONTDUMP/DODUMP, SEQUENTIAL, RANDOM,
// NORMAL), MADV_FREE and MADV_COLD, MADV_WILLNEED and MADV_REMOVE.
#include <algorithm>
#include <cerrno>
#include <optional>
#include <unordered_map>
#include <vector>

#include "internal.h"

namespace rmapkit::mm {

int machine::do_madvise(mm_struct& mm, vaddr_t addr, std::uint64_t pages, madv advice) {
  const vaddr_t end = page_addr(addr, pages);
  if (!range_mapped(mm, addr, end)) return -ENOMEM;
  auto vmas = vmas_in(mm, addr, end);
  // madvise_collapse() goes VMA by VMA and stops at the first that fails.
  if (advice == madv::collapse) {
    for (auto* vma : vmas)
      if (int r = madvise_collapse(*vma, std::max(addr, vma->vm_start), std::min(end, vma->vm_end)); r < 0) return r;
    return 0;
  }
  // Refusals come before any change (madvise_walk_vmas() checks each VMA as it goes;
  // the scenario rules guarantee a refused range is refused on its first VMA).
  for (auto* vma : vmas) {
    // can_madv_lru_vma(): none of these touch mlocked memory.
    const bool lru = advice == madv::dontneed || advice == madv::pageout || advice == madv::free ||
                     advice == madv::cold;
    if (lru && vma->vm_flags.has(vm_flag::locked)) return -EINVAL;
    const bool anon_only = advice == madv::wipeonfork || advice == madv::free;
    if (anon_only && (vma->vm_file || vma->vm_flags.has(vm_flag::shared))) return -EINVAL;
    if (advice == madv::remove) {
      // madvise_remove(): a locked or fileless range cannot lose pages; a private mapping
      // may not punch holes in its file.
      if (vma->vm_flags.has(vm_flag::locked) || !vma->vm_file) return -EINVAL;
      if (!vma->vm_flags.has(vm_flag::shared) || !vma->vm_flags.has(vm_flag::maywrite)) return -EACCES;
    }
  }
  for_each_vma_range(mm, addr, end, [&](vm_area_struct* vma, vaddr_t s, vaddr_t e) {
    vm_flags_t f = vma->vm_flags;
    switch (advice) {
      case madv::dontneed: madvise_dontneed(*vma, s, e); return;
      case madv::pageout: madvise_cold_or_pageout(*vma, s, e, true); return;
      case madv::cold: madvise_cold_or_pageout(*vma, s, e, false); return;
      case madv::free: madvise_free(*vma, s, e); return;
      case madv::willneed: madvise_willneed(*vma, s, e); return;
      case madv::remove: madvise_remove(*vma, s, e); return;
      case madv::collapse: return;  // done above
      case madv::dontfork: f.set(vm_flag::dontcopy); break;
      case madv::dofork: f.clear(vm_flag::dontcopy); break;
      case madv::wipeonfork: f.set(vm_flag::wipeonfork); break;
      case madv::keeponfork: f.clear(vm_flag::wipeonfork); break;
      case madv::dontdump: f.set(vm_flag::dontdump); break;
      case madv::dodump: f.clear(vm_flag::dontdump); break;
      case madv::sequential: f.set(vm_flag::seq_read).clear(vm_flag::rand_read); break;
      case madv::random: f.set(vm_flag::rand_read).clear(vm_flag::seq_read); break;
      case madv::normal: f.clear(vm_flag::seq_read).clear(vm_flag::rand_read); break;
      case madv::hugepage: f.set(vm_flag::hugepage).clear(vm_flag::nohugepage); break;
      case madv::nohugepage: f.set(vm_flag::nohugepage).clear(vm_flag::hugepage); break;
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

// Kernel: madvise_free_pte_range(). The range's swap entries go at once. A present page is
// cleaned, unless it is dirty or in the swap cache while another PTE maps it: its copy in
// swap is dropped, its PTE made old and clean, and it becomes lazily freeable (off the
// anon lists, not swap-backed), so reclaim drops it instead of writing it, unless a write
// dirties it again first. A page others map but that is clean is made lazily freeable too:
// only this process's PTE is cleaned, and reclaim will find the others' dirty ones.
// A large folio the range holds in part is split first (unless another mm may map it: then
// it is left alone), so only the pages in range lose their dirty flag (corpus v2/39); one it
// holds whole goes lazily free whole, by PMD or by all its PTEs.
void machine::madvise_free(vm_area_struct& vma, vaddr_t start, vaddr_t end) {
  madvise_split_large_folios(vma, start, end, false);
  auto& pgd = vma.vm_mm->pgd;
  pgd.for_each_huge(start, end, [&](vaddr_t h, pte_t pmd) {
    if (pmd.pfn() == HUGE_ZERO_PFN) return;
    folio& f = folio_of(pmd.pfn());
    if (large_state(f).maybe_shared || !lazyfree_cleanable(f, 1)) return;
    pgd.set_huge_pmd(h, pmd.mkold().mkclean());
    folio_mark_lazyfree(f);
  });
  // The large folios left among the PTEs are held whole, or partly but maybe shared (left
  // alone); a whole one is decided once, for all its PTEs (by its first run).
  std::unordered_map<const folio*, bool> decided;
  for (auto [head, whole] : large_folio_runs(pgd, start, end))
    decided.try_emplace(head, whole && lazyfree_cleanable(folio_of(head->pfn), head->nr_pages()));
  pgd.for_each(start, end, [&](vaddr_t a, pte_t pte) {
    if (pte.is_swap()) {
      pgd.set(a, pte_t{});
      free_swap_and_cache(pte.swap_entry());
      return;
    }
    if (!pte.present() || pte.pfn() == _zero_pfn) return;
    folio& f = page_folio(pte.pfn());
    if (f.is_large()) {
      auto it = decided.find(&f);
      if (it == decided.end() || !it->second) return;
    } else if (!lazyfree_cleanable(f, 1)) {
      return;
    }
    if (pte.young() || pte.dirty()) pgd.set(a, pte.mkold().mkclean());
    folio_mark_lazyfree(f);
  });
}

// Whether MADV_FREE may clean a folio the range maps whole by @nr PTEs (or one PMD): a
// dirty or swap-cached one only if those are all its mappings (a large folio mapped once
// per page is exclusive), after its swap copy is dropped. Clears its dirty flag.
bool machine::lazyfree_cleanable(folio& f, std::uint64_t nr) {
  if (!f.test(folio_flag::swapcache) && !f.test(folio_flag::dirty)) return true;
  if (static_cast<std::uint64_t>(folio_mapcount(f)) != nr) return false;
  if (f.test(folio_flag::swapcache) && !folio_free_swap(f)) return false;
  f.clear(folio_flag::dirty);
  return true;
}

// Kernel: madvise_cold_or_pageout_pte_range(): every page of the range that no other PTE
// maps is aged out (its young bit and PG_referenced cleared). MADV_COLD then deactivates it
// (folio_deactivate(): an active evictable folio goes to its inactive list); MADV_PAGEOUT
// isolates it and reclaims it at once, references ignored (reclaim_pages(), vmscan.cc).
// Large folios are split first where that is the kernel's way (madvise_split_large_folios()).
void machine::madvise_cold_or_pageout(vm_area_struct& vma, vaddr_t start, vaddr_t end, bool pageout) {
  madvise_split_large_folios(vma, start, end, pageout);
  std::vector<pfn_t> isolated;
  auto& pgd = vma.vm_mm->pgd;
  const folio* aged = nullptr;      // the large folio whose PTEs are being aged
  std::vector<const folio*> whole;  // large folios the range maps whole (a PMD covered whole)
  for (auto [head, all] : large_folio_runs(pgd, start, end))
    if (all) whole.push_back(head);
  pgd.for_each_huge(start, end, [&](vaddr_t h, pte_t pmd) {
    if (start <= h && h.value + PMD_SIZE <= end.value && pmd.pfn() != HUGE_ZERO_PFN)
      whole.push_back(&folio_of(pmd.pfn()));
  });
  // A whole large folio left here, PMD-mapped or PTE-mapped, is one the caller alone maps
  // and MADV_COLD deactivates whole (a split that failed leaves one to MADV_PAGEOUT too: it
  // is passed over).
  auto age_large = [&](folio& f) {
    if (&f == aged || large_state(f).maybe_shared) return false;
    if (pageout) {
      if (f.file() && std::find(whole.begin(), whole.end(), &f) != whole.end()) isolate_whole_for_pageout(f, isolated);
      aged = &f;
      return false;  // MADV_PAGEOUT leaves the young bits: reclaim ignores them
    }
    aged = &f;
    f.clear(folio_flag::referenced);
    if (!f.test(folio_flag::unevictable) && f.test(folio_flag::active))
      folio_set_lru_flag(f, folio_flag::active, false);
    return true;
  };
  pgd.for_each_huge(start, end, [&](vaddr_t h, pte_t pmd) {
    if (pmd.pfn() != HUGE_ZERO_PFN && age_large(folio_of(pmd.pfn()))) pgd.set_huge_pmd(h, pmd.mkold());
  });
  pgd.for_each(start, end, [&](vaddr_t a, pte_t pte) {
    if (!pte.present() || pte.pfn() == _zero_pfn) return;
    folio& f = folio_of(pte.pfn());
    if (f.is_large()) {
      folio& head = page_folio(pte.pfn());
      if ((&head == aged && !pageout) || age_large(head)) pgd.set(a, pte.mkold());
      return;
    }
    if (f.mapcount != 1 || !f.test(folio_flag::lru)) return;
    pgd.set(a, pte.mkold());
    f.clear(folio_flag::referenced);
    if (f.test(folio_flag::unevictable)) return;
    if (!pageout) {
      if (f.test(folio_flag::active)) folio_set_lru_flag(f, folio_flag::active, false);
      return;
    }
    folio_isolate_lru(f);
    isolated.push_back(f.pfn);
  });
  reclaim_pages(isolated);
}

// A shmem folio MADV_PAGEOUT holds whole goes to reclaim whole (its PTEs or PMD unmapped
// there, and shmem_writeout() splits it, seen on the kernel). An unevictable one is put back.
void machine::isolate_whole_for_pageout(folio& head, std::vector<pfn_t>& isolated) {
  head.clear(folio_flag::referenced);
  if (!head.test(folio_flag::lru) || head.test(folio_flag::unevictable)) return;
  folio_isolate_lru(head);
  isolated.push_back(head.pfn);
}

// The large folios of madvise_cold_or_pageout_pte_range() and madvise_free_pte_range().
// One that another mm may map (folio_maybe_mapped_shared()) is left alone (research fact
// 29). One the range holds only in part is split (split_folio()), and its pages in the range
// are then taken one by one. One the range holds whole stays whole for MADV_COLD and
// MADV_FREE; MADV_PAGEOUT isolates it and reclaim splits it, since a swap file takes no
// large folio (fact 29): the model splits an anonymous one here (a shmem one is split by
// shmem_writeout(), vmscan.cc). Either split of an anonymous folio maps zero-filled pages to
// the zero page; a split of a shmem folio unmaps it everywhere (split_file_folio()).
void machine::madvise_split_large_folios(vm_area_struct& vma, vaddr_t start, vaddr_t end, bool pageout) {
  auto& pgd = vma.vm_mm->pgd;
  std::vector<pfn_t> split;
  // An unevictable folio isolated whole goes back from reclaim before any split.
  auto consider = [&](const folio& head, bool whole) {
    if (large_state(head).maybe_shared) return;
    if (whole && (!pageout || head.test(folio_flag::unevictable) || head.file())) return;
    if (std::find(split.begin(), split.end(), head.pfn) == split.end()) split.push_back(head.pfn);
  };
  pgd.for_each_huge(start, end, [&](vaddr_t h, pte_t pmd) {
    if (pmd.pfn() != HUGE_ZERO_PFN) consider(folio_of(pmd.pfn()), start <= h && h.value + PMD_SIZE <= end.value);
  });
  for (auto [head, whole] : large_folio_runs(pgd, start, end)) consider(*head, whole);
  for (pfn_t pfn : split)
    if (folio& head = folio_of(pfn); head.is_large() && head.pfn == head.head_pfn()) split_large_folio(head);
}

// The runs of PTEs in a range that map consecutive pages of one large folio
// (madvise_folio_pte_batch()), in address order, each with whether it maps the folio whole.
std::vector<std::pair<const folio*, bool>> machine::large_folio_runs(const page_table& pgd, vaddr_t start,
                                                                     vaddr_t end) const {
  std::vector<std::pair<const folio*, bool>> runs;
  const folio* run = nullptr;
  std::uint64_t run_first = 0, run_nr = 0;
  vaddr_t run_next{};
  auto flush = [&] {
    if (run) runs.emplace_back(run, run_first == 0 && run_nr == run->nr_pages());
    run = nullptr;
  };
  pgd.for_each(start, end, [&](vaddr_t a, pte_t pte) {
    const bool large = pte.present() && pte.pfn() != _zero_pfn && folio_of(pte.pfn()).is_large();
    if (!large) return flush();
    const folio& head = page_folio(pte.pfn());
    const std::uint64_t sub = pte.pfn().value - head.pfn.value;
    if (run != &head || a != run_next || sub != run_first + run_nr) {
      flush();
      run = &head;
      run_first = sub;
      run_nr = 0;
    }
    ++run_nr;
    run_next = page_addr(a, 1);
  });
  flush();
  return runs;
}

// Kernel: madvise_willneed(). Reading ahead: the range's swapped pages come back into the
// swap cache (anonymous memory: each swap PTE's entry; shmem: the file's swapped pages of the
// range), mapped by no one until a fault finds them there. A file's other pages are read
// ahead into its page cache, which here already holds them all.
void machine::madvise_willneed(vm_area_struct& vma, vaddr_t start, vaddr_t end) {
  if (vma.vm_file) {
    const auto& swapped = vma.vm_file->swapped;
    for (auto it = swapped.lower_bound(linear_page_index(vma, start).value);
         it != swapped.end() && it->first < linear_page_index(vma, end).value; ++it)
      swapin(it->second);
  } else {
    vma.vm_mm->pgd.for_each(start, end, [&](vaddr_t, pte_t pte) {
      if (pte.is_swap()) swapin(pte.swap_entry());
    });
  }
  lru_add_drain();
}

// Kernel: madvise_remove(), a hole punched with fallocate(FALLOC_FL_PUNCH_HOLE): the file's
// pages in the range leave every mapping of the file — a private mapping's copies of them
// stay (unmap_mapping_range() without even_cows) — and the page cache; swapped ones are let
// go. A large folio the hole cuts is split (shmem_undo_range()), and its pieces in the hole
// go with the rest. A later fault reads the hole: a new zero-filled page.
void machine::madvise_remove(vm_area_struct& vma, vaddr_t start, vaddr_t end) {
  address_space& as = *vma.vm_file;
  const std::uint64_t first = linear_page_index(vma, start).value, last = linear_page_index(vma, end).value;
  unmap_mapping_range(as, first, last);
  truncate_whole_folios(as, first, last);
  // The folio the hole starts in, then the one it ends in, if the hole cuts them.
  bool same_folio = false;
  if (folio* f = cut_by_hole(as, first, first, last)) {
    same_folio = last <= f->index.value + f->nr_pages();
    truncate_partial_folio(*f, first, last);
  }
  if (!same_folio)
    if (folio* f = cut_by_hole(as, last - 1, first, last)) truncate_partial_folio(*f, first, last);
  truncate_whole_folios(as, first, last);
  for (auto it = as.swapped.lower_bound(first); it != as.swapped.end() && it->first < last;) {
    free_swap_and_cache(it->second);
    it = as.swapped.erase(it);
  }
}

// unmap_mapping_range(): the PTEs and PMDs that map the file's pages [first, last), in every
// mapping of the file, a private mapping's copies of them left. A PMD that maps a page of the
// range is zapped whole (a file PMD is not split).
void machine::unmap_mapping_range(address_space& as, std::uint64_t first, std::uint64_t last) {
  std::vector<pfn_t> heads;
  for (auto it = as.i_pages.lower_bound(first); it != as.i_pages.end() && it->first < last; ++it)
    if (const pfn_t head = page_folio(it->second).pfn; heads.empty() || heads.back() != head) heads.push_back(head);
  for (pfn_t pfn : heads) {
    folio& f = folio_of(pfn);
    rmap_walk_control rwc;
    rwc.rmap_one = [&](folio&, vm_area_struct& v, vaddr_t a) {
      if (!f.is_large()) {
        const pte_t pte = v.vm_mm->pgd.get(a);
        if (pte.present() && pte.pfn() == f.pfn) zap_pte_range(v, a, page_addr(a, 1));
        return true;
      }
      // Runs of consecutive PTEs, each zapped as one batch (zap_present_folio_ptes()).
      std::optional<vaddr_t> run_start;
      vaddr_t run_end{};
      auto flush = [&] {
        if (run_start) zap_pte_range(v, *run_start, run_end);
        run_start.reset();
      };
      for (auto [at, pmd] : large_folio_mappings(f, v)) {
        const std::uint64_t index = linear_page_index(v, at).value;
        if (pmd) {
          flush();
          zap_pte_range(v, at, page_addr(at, HPAGE_PMD_NR));
        } else if (index >= first && index < last) {
          if (run_start && at != run_end) flush();
          if (!run_start) run_start = at;
          run_end = page_addr(at, 1);
        }
      }
      flush();
      return true;
    };
    rmap_walk(f, rwc);
  }
}

// truncate_inode_folio() of every folio wholly inside [first, last).
void machine::truncate_whole_folios(address_space& as, std::uint64_t first, std::uint64_t last) {
  std::vector<pfn_t> whole;
  for (auto it = as.i_pages.lower_bound(first); it != as.i_pages.end() && it->first < last; ++it) {
    const folio& f = page_folio(it->second);
    if (f.pfn == it->second && f.index.value + f.nr_pages() <= last) whole.push_back(f.pfn);
  }
  for (pfn_t pfn : whole) filemap_remove_folio(folio_of(pfn));
}

// shmem_get_partial_folio(): the large folio holding page @index, if the hole [first, last)
// holds only part of it.
folio* machine::cut_by_hole(address_space& as, std::uint64_t index, std::uint64_t first, std::uint64_t last) {
  const auto it = as.i_pages.find(index);
  if (it == as.i_pages.end()) return nullptr;
  folio& f = page_folio(it->second);
  if (!f.is_large() || (f.index.value >= first && f.index.value + f.nr_pages() <= last)) return nullptr;
  return &f;
}

// truncate_inode_partial_folio() of a shmem folio the hole [first, last) cuts: it is marked
// dirty (shmem_undo_range()) and split at the hole's first page in it, then the piece that
// holds the hole's end at that page, so that every page of the hole is a folio of its own or
// lies in one the hole holds whole (seen on the kernel, corpus v2/61).
void machine::truncate_partial_folio(folio& f, std::uint64_t first, std::uint64_t last) {
  const std::uint64_t begin = std::max(first, f.index.value), folio_end = f.index.value + f.nr_pages();
  const pfn_t base = f.pfn;
  const pgoff_t index = f.index;
  f.set(folio_flag::dirty);
  if (!split_file_folio_at(f, pfn_t{base.value + (begin - index.value)}))
    throw std::logic_error("madvise remove: a large folio held by more than its mappings");
  if (last >= folio_end) return;
  folio& second = page_folio(pfn_t{base.value + (last - index.value)});
  if (second.is_large() && !split_file_folio_at(second, pfn_t{base.value + (last - index.value)}))
    throw std::logic_error("madvise remove: a large folio held by more than its mappings");
}

// MADV_DONTNEED zaps the range; with CONFIG_PT_RECLAIM, a PTE table the range covers whole
// is freed once every entry in it is empty (zap_pte_range() then try_get_and_clear_pmd()),
// so the next fault there may install a PMD (research fact 27).
void machine::madvise_dontneed(vm_area_struct& vma, vaddr_t start, vaddr_t end) {
  zap_pte_range(vma, start, end);
  for (std::uint64_t c = (start.value + PMD_SIZE - 1) & ~(PMD_SIZE - 1); c + PMD_SIZE <= end.value; c += PMD_SIZE)
    vma.vm_mm->pgd.free_pte_table_if_empty(vaddr_t{c});
}

}  // namespace rmapkit::mm
