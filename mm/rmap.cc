// Kernel: mm/rmap.c (v6.18): anon_vma lifecycle (prepare, clone, fork, unlink), folio
// rmap add/remove/move, rmap_walk and its users folio_referenced(), try_to_unmap(),
// folio_mkclean(). What a walk does with each VMA it finds is rmap_visit() (rmap_walk.h);
// the anonymous designs, linux-6 included, are in designs/, page_vma_mapped() in
// page_vma_mapped.cc. The model is single-threaded, so the kernel's locks (root rwsem,
// i_mmap_rwsem, PTL) have no counterpart; the orders they protect are kept where a
// result depends on them (interval-tree order, fork inserting the child after the parent).
#include <stdexcept>

#include "rmap_walk.h"
#include "rmapkit/mm/machine.h"

namespace rmapkit::mm {

// ---- anon_vma objects ---------------------------------------------------------------------

anon_vma* machine::anon_vma_alloc() {
  auto* av = _anon_vmas.alloc();
  _anon_vma_count.alloc();
  av->id = ++_anon_vma_serial;
  return av;
}

/// Drops a reference; the last one frees the anon_vma and then its reference on the root
/// (a child pins its root, so the root always goes last).
void machine::put_anon_vma(anon_vma* av) {
  if (--av->refcount > 0) return;
  anon_vma* root = av->root;
  free_anon_vma(av);
  if (root != av && --root->refcount == 0) free_anon_vma(root);
}

void machine::free_anon_vma(anon_vma* av) {
  _anon_vmas.free(av);
  _anon_vma_count.free();
}

anon_vma_chain* machine::anon_vma_chain_alloc() {
  _avc_count.alloc();
  return _avcs.alloc();
}

void machine::anon_vma_chain_free(anon_vma_chain* avc) {
  _avcs.free(avc);
  _avc_count.free();
}

void machine::anon_vma_chain_link(vm_area_struct& vma, anon_vma_chain* avc, anon_vma* av) {
  avc->vma = &vma;
  avc->anon_vma = av;
  vma.anon_vma_chain.add(avc->same_vma);  // newest first: the root ends up last
  avc->cached_start = vma.vm_pgoff.value;
  avc->cached_last = vma.last_pgoff();
  av->rb_root.insert(*avc);
}

// Kernel: __anon_vma_prepare()
int machine::anon_vma_prepare(vm_area_struct& vma) {
  if (vma.anon_vma) return 0;
  auto* avc = anon_vma_chain_alloc();
  anon_vma* av = find_mergeable_anon_vma(vma);
  if (!av) {
    av = anon_vma_alloc();
    av->num_children++;  // the self-parent link of a new root: a root is never reused by fork
  }
  vma.anon_vma = av;
  anon_vma_chain_link(vma, avc, av);
  av->num_active_vmas++;
  _anon->prepare(vma);
  return 0;
}

// Kernel: anon_vma_clone(). An exact copy of src's chain for split, mremap and merge;
// at fork (dst->anon_vma == NULL) it may also pick an anon_vma to reuse: the oldest one
// on the chain with no live VMA and fewer than two children.
void machine::anon_vma_clone(vm_area_struct& dst, vm_area_struct& src) {
  clone_anon_vma_chain(dst, src);
  _anon->clone(dst, src);
}

void machine::clone_anon_vma_chain(vm_area_struct& dst, vm_area_struct& src) {
  src.anon_vma_chain.for_each_reverse([&](anon_vma_chain& pavc) {
    auto* avc = anon_vma_chain_alloc();
    anon_vma* av = pavc.anon_vma;
    anon_vma_chain_link(dst, avc, av);
    if (!dst.anon_vma && src.anon_vma && av->num_children < 2 && av->num_active_vmas == 0) dst.anon_vma = av;
  });
  if (dst.anon_vma) dst.anon_vma->num_active_vmas++;
}

// Kernel: anon_vma_fork()
void machine::anon_vma_fork(vm_area_struct& vma, vm_area_struct& pvma) {
  if (!pvma.anon_vma) return;
  vma.anon_vma = nullptr;  // vm_area_dup() copied the parent's pointer
  clone_anon_vma_chain(vma, pvma);
  if (vma.anon_vma) {  // reused an ancestor's anon_vma
    _anon->fork(vma, pvma);
    return;
  }
  anon_vma* av = anon_vma_alloc();
  av->num_active_vmas++;
  av->root = pvma.anon_vma->root;
  av->parent = pvma.anon_vma;
  av->root->refcount++;  // a child pins its root
  vma.anon_vma = av;
  anon_vma_chain_link(vma, anon_vma_chain_alloc(), av);
  av->parent->num_children++;
  _anon->fork(vma, pvma);
}

// Kernel: unlink_anon_vmas(). Two phases: an anon_vma cannot be put while the tree walk
// over the chain is still going, and the root must be put last (it is last on the chain).
void machine::unlink_anon_vmas(vm_area_struct& vma) {
  _anon->unlink(vma);
  vma.anon_vma_chain.for_each([&](anon_vma_chain& avc) {
    anon_vma* av = avc.anon_vma;
    av->rb_root.remove(avc);
    if (av->rb_root.empty()) {
      av->parent->num_children--;
      return;  // kept on the chain for the second phase
    }
    avc.same_vma.del();
    anon_vma_chain_free(&avc);
  });
  if (vma.anon_vma) {
    vma.anon_vma->num_active_vmas--;
    vma.anon_vma = nullptr;
  }
  vma.anon_vma_chain.for_each([&](anon_vma_chain& avc) {
    anon_vma* av = avc.anon_vma;
    avc.same_vma.del();
    anon_vma_chain_free(&avc);
    put_anon_vma(av);
  });
}

/// The AVC keys follow the VMA's [vm_pgoff, last]: remove them before the VMA's range
/// changes and insert them again after (anon_vma_interval_tree_pre/post_update_vma()).
void machine::anon_vma_interval_tree_update(vm_area_struct& vma, bool remove) {
  _anon->range_changed(vma, remove);
  vma.anon_vma_chain.for_each([&](anon_vma_chain& avc) {
    if (remove) {
      avc.anon_vma->rb_root.remove(avc);
    } else {
      avc.cached_start = vma.vm_pgoff.value;
      avc.cached_last = vma.last_pgoff();
      avc.anon_vma->rb_root.insert(avc);
    }
  });
}

// ---- folio rmap ---------------------------------------------------------------------------

// Kernel: folio_add_new_anon_rmap(). A folio that may be shared (not exclusive) points at
// the root anon_vma, so every related VMA can find it. A large folio is mapped whole, each
// page by the PTE at its place from @addr, the folio's first page's address, on.
void machine::folio_add_new_anon_rmap(folio& f, vm_area_struct& vma, vaddr_t addr, bool exclusive) {
  f.mapping = exclusive ? vma.anon_vma : vma.anon_vma->root;
  f.index = linear_page_index(vma, addr);
  f.set(folio_flag::swapbacked);
  for (std::uint64_t i = 0; i < f.nr_pages(); ++i) {
    folio& page = _frames[f.pfn.value + i];
    page.mapcount = 1;
    page.assign(folio_flag::anon_exclusive, exclusive);
  }
  if (f.is_large()) large_mapcount_add(f, *vma.vm_mm, static_cast<int>(f.nr_pages()));
  _anon->add_new(f, vma, addr, exclusive);
}

// Kernel: folio_add_anon_rmap_ptes() for a folio that is already anonymous (swap-in).
void machine::folio_add_anon_rmap_pte(folio& f, vm_area_struct& vma, vaddr_t addr, bool exclusive) {
  if (!f.is_ksm()) {
    anon_vma* av = f.anon();
    if (!av || !vma.anon_vma || av->root != vma.anon_vma->root || f.index != linear_page_index(vma, addr))
      throw std::logic_error("folio_add_anon_rmap_pte: folio does not belong to this VMA's anon_vma family");
  }
  f.mapcount++;
  if (exclusive) f.set(folio_flag::anon_exclusive);
}

void machine::folio_add_file_rmap_pte(folio& f) { f.mapcount++; }

void machine::rmap_bug(const char* what) { throw std::logic_error(what); }

// The pages of a large folio keep their AnonExclusive bit when they go unmapped (the
// kernel clears it only when the folio is freed): the report shows the head page's bit on
// every page. A page unmapped while others stay mapped queues the folio for a split.
void machine::folio_remove_rmap_ptes(folio& head, folio& page, unsigned nr, const vm_area_struct& vma) {
  if (!head.is_large()) return folio_remove_rmap_pte(page);
  bool unmapped_one = false;
  for (unsigned i = 0; i < nr; ++i) {
    folio& p = _frames[page.pfn.value + i];
    if (--p.mapcount < 0) throw std::logic_error("folio_remove_rmap_ptes: mapcount underflow");
    unmapped_one |= p.mapcount == 0;
  }
  large_mapcount_sub(head, *vma.vm_mm, static_cast<int>(nr));
  // While a PMD maps it whole, no page is unmapped (__folio_remove_rmap(): ENTIRELY_MAPPED).
  const auto& st = large_state(head);
  if (unmapped_one && st.entire_mapcount == 0 && st.mapcount > 0 && head.is_anon()) deferred_split_folio(head);
}

// Kernel: folio_move_anon_rmap(): a reused COW page moves to the faulting VMA's own
// anon_vma, so later walks no longer visit the parent and siblings.
void machine::folio_move_anon_rmap(folio& f, vm_area_struct& vma) {
  f.mapping = vma.anon_vma;
  _anon->move(f, vma);
}

// ---- walks --------------------------------------------------------------------------------

// A large folio's walk asks for every VMA that covers any of its pages.
void machine::rmap_walk_anon(folio& f, const rmap_walk_control& rwc) {
  anon_vma* av = f.anon();
  if (!av) return;
  const auto pgoff = f.index.value, last = pgoff + f.nr_pages() - 1;
  rmap_trace(*this, [&] { return walk_step{.what = walk_step::kind::start, .name = "anon_vma", .object = av}; });
  const rmap_lock lock(*this, rmap_lock_class::anon_vma_root_rwsem, av->root, "anon_vma_lock_read");
  rmap_trace(*this, [&] {
    return walk_step{
        .what = walk_step::kind::query, .name = "anon_vma->rb_root", .object = av, .first = pgoff, .last = last};
  });
  for (auto* avc = av->rb_root.iter_first(pgoff, last); avc; avc = av->rb_root.iter_next(*avc, pgoff, last)) {
    rmap_entry(*this, "anon_vma_chain", avc, avc->vma);
    if (!rmap_visit(*this, f, *avc->vma, rmap_candidates::cover_the_page, rwc)) return;
  }
}

// The interval-tree design's walk (3.7 on): each node the query compares is an entry.
void machine::rmap_walk_file(folio& f, const rmap_walk_control& rwc) {
  address_space* as = f.file();
  if (!as) return;
  const auto pgoff = f.index.value, last = pgoff + f.nr_pages() - 1;
  rmap_trace(*this, [&] { return walk_step{.what = walk_step::kind::start, .name = "address_space", .object = as}; });
  const rmap_lock lock(*this, rmap_lock_class::i_mmap_rwsem, as, "i_mmap_lock_read");
  rmap_trace(*this, [&] {
    return walk_step{.what = walk_step::kind::query, .name = "i_mmap", .object = as, .first = pgoff, .last = last};
  });
  auto seen = [this](const vm_area_struct& v) { rmap_entry(*this, "vm_area_struct->shared.rb", &v, &v); };
  for (auto* vma = as->i_mmap.iter_first(pgoff, last, seen); vma; vma = as->i_mmap.iter_next(*vma, pgoff, last, seen))
    if (!rmap_visit(*this, f, *vma, rmap_candidates::cover_the_page, rwc)) return;
}

void machine::rmap_walk(folio& f, const rmap_walk_control& rwc) {
  _walk.walks++;
  if (f.is_ksm()) rmap_walk_ksm(f, rwc);
  else if (f.is_anon()) _anon->walk(f, rwc);
  else _file->walk(f, rwc);
}

// Kernel: folio_referenced() + folio_referenced_one(). Counts referencing VMAs, not PTEs,
// and stops once it has seen as many mappings as the folio has.
int machine::folio_referenced(folio& f, vm_flags_t* vm_flags) {
  int mapcount = folio_mapcount(f);
  int referenced = 0;
  if (mapcount == 0) return 0;
  vm_flags_t flags;
  rmap_walk_control rwc;
  // invalid_folio_referenced_vma(): a mapping without recency is not looked at, neither its
  // young bit nor its VM_LOCKED.
  rwc.invalid_vma = [](vm_area_struct& vma) { return !vma.has_recency(); };
  rwc.rmap_one = [&](folio& fo, vm_area_struct& vma, vaddr_t addr) {
    if (fo.is_large()) return large_folio_referenced_one(fo, vma, mapcount, referenced, flags);
    if (!page_vma_mapped(fo, vma, addr)) return true;
    if (vma.vm_flags.has(vm_flag::locked)) {
      flags.set(vm_flag::locked);
      return false;  // an mlocked mapping: the folio is unevictable, stop
    }
    pte_t pte = vma.vm_mm->pgd.get(addr);
    if (pte.young()) {
      vma.vm_mm->pgd.set(addr, pte.mkold());
      referenced++;
      flags = flags | vm_flags_t{vma.vm_flags.value() & ~static_cast<std::uint64_t>(vm_flag::locked)};
    }
    return --mapcount > 0;
  };
  rmap_walk(f, rwc);
  if (vm_flags) *vm_flags = flags;
  return referenced;
}

// Kernel: try_to_unmap() + try_to_unmap_one().
bool machine::try_to_unmap(folio& f, bool ignore_mlock) {
  rmap_walk_control rwc;
  bool aborted = false;
  rwc.rmap_one = [&](folio& fo, vm_area_struct& vma, vaddr_t addr) {
    if (fo.is_large()) {
      aborted = !(fo.is_anon() ? try_to_unmap_lazyfree_large(fo, vma) : try_to_unmap_file_large(fo, vma, ignore_mlock));
      return !aborted;
    }
    if (!page_vma_mapped(fo, vma, addr)) return true;
    if (vma.vm_flags.has(vm_flag::locked)) {
      aborted = true;
      return false;
    }
    pte_t pte = vma.vm_mm->pgd.get(addr);
    if (pte.dirty()) fo.set(folio_flag::dirty);
    if (fo.is_anon() && !fo.test(folio_flag::swapbacked)) {
      // A lazily freed folio: written since MADV_FREE, it is anonymous memory again and
      // stays; clean and held only by its mappings, this mapping just goes.
      if (fo.test(folio_flag::dirty)) fo.set(folio_flag::swapbacked);
      if (fo.test(folio_flag::dirty) || fo.refcount != 1 + fo.mapcount) {
        aborted = true;
        return false;
      }
      vma.vm_mm->pgd.set(addr, pte_t{});
    } else if (fo.is_anon()) {
      if (!fo.test(folio_flag::swapcache)) {
        aborted = true;  // anon folios are added to the swap cache before they are unmapped
        return false;
      }
      swap_duplicate(fo.swap);
      // The exclusive marker travels in the swap PTE, so swap-in can restore it.
      bool exclusive = fo.test(folio_flag::anon_exclusive);
      vma.vm_mm->pgd.set(addr, pte_t::mk_swap(fo.swap, exclusive));
    } else {
      vma.vm_mm->pgd.set(addr, pte_t{});  // the page cache keeps the data
    }
    folio_remove_rmap_pte(fo);
    folio_put(fo);
    return true;
  };
  rwc.done = [this](folio& fo) { return !folio_mapped(fo); };
  rmap_walk(f, rwc);
  return !aborted && !folio_mapped(f);
}

// page_vma_mapped_walk() of a large folio in one VMA: where its PMD, or each PTE that maps
// one of its pages, is (the flag says a PMD).
std::vector<std::pair<vaddr_t, bool>> machine::large_folio_mappings(const folio& head, const vm_area_struct& vma) {
  std::vector<std::pair<vaddr_t, bool>> found;
  const auto& pgd = vma.vm_mm->pgd;
  auto looked_at = [&](vaddr_t a, pte_t e, bool hit) {
    _walk.ptes_examined++;
    if (!hit) _walk.misses++;
    rmap_trace(*this,
               [&] { return walk_step{.what = walk_step::kind::pte, .vma = &vma, .addr = a, .pte = e, .ok = hit}; });
  };
  for (std::uint64_t i = 0; i < head.nr_pages(); ++i) {
    const auto a = vma_address(vma, pgoff_t{head.index.value + i});
    if (!a) continue;
    if (auto pmd = pgd.huge_pmd(*a)) {
      const bool hit = pmd->pfn() == head.pfn;
      looked_at(*a, *pmd, hit);
      if (hit) found.emplace_back(*a, true);
      break;  // a PMD maps the whole folio or none of it
    }
    const pte_t pte = pgd.get(*a);
    const bool hit = pte.present() && pte.pfn().value == head.pfn.value + i;
    looked_at(*a, pte, hit);
    if (hit) found.emplace_back(*a, false);
  }
  return found;
}

// folio_referenced_one() of a large folio: each young PTE (or the PMD) is a reference,
// each mapping one of the @mapcount still to find.
bool machine::large_folio_referenced_one(folio& head, vm_area_struct& vma, int& mapcount, int& referenced,
                                         vm_flags_t& flags) {
  auto& pgd = vma.vm_mm->pgd;
  const auto maps = large_folio_mappings(head, vma);
  if (vma.vm_flags.has(vm_flag::locked)) {
    // A VM_LOCKED VMA that maps the whole folio (by PMD or all its PTEs) restores its mlock
    // and stops the walk; one that maps part of it is passed over, young bits and all.
    mapcount -= static_cast<int>(maps.size());
    if (maps.empty() || (!maps.front().second && maps.size() != head.nr_pages())) return mapcount > 0;
    mlock_vma_folio(head, vma);
    flags.set(vm_flag::locked);
    return false;
  }
  for (auto [a, pmd] : maps) {
    const pte_t e = pmd ? *pgd.huge_pmd(a) : pgd.get(a);
    if (e.young()) {
      if (pmd) pgd.set_huge_pmd(a, e.mkold());
      else pgd.set(a, e.mkold());
      referenced++;
      flags = flags | vm_flags_t{vma.vm_flags.value() & ~static_cast<std::uint64_t>(vm_flag::locked)};
    }
    if (--mapcount == 0) return false;
  }
  return true;
}

// try_to_unmap_one() of a large folio, which reclaim meets whole only when it is lazily
// freed (MADV_FREE of all of it; swap-backed ones are split before, by MADV_PAGEOUT, and
// `reclaim` refuses large folios). Its PTEs in the VMA go as one batch, a PMD whole
// (unmap_huge_pmd_locked()): written since MADV_FREE, or held by more than its mappings and
// the isolation, it stays, swap-backed again. False when the walk must stop.
bool machine::try_to_unmap_lazyfree_large(folio& head, vm_area_struct& vma) {
  if (!head.is_anon() || head.test(folio_flag::swapbacked))
    throw std::logic_error("try_to_unmap: a swap-backed large folio (reclaim splits it first)");
  const auto maps = large_folio_mappings(head, vma);
  if (maps.empty()) return true;
  if (vma.vm_flags.has(vm_flag::locked)) return false;
  auto& pgd = vma.vm_mm->pgd;
  for (auto [a, pmd] : maps)
    if ((pmd ? *pgd.huge_pmd(a) : pgd.get(a)).dirty()) head.set(folio_flag::dirty);
  if (head.test(folio_flag::dirty) || head.refcount != 1 + folio_mapcount(head)) {
    head.set(folio_flag::swapbacked);
    // A PMD that cannot be discarded is split (TTU_SPLIT_HUGE_PMD), and the walk of its
    // PTEs stops at once, a swap-backed folio not in the swap cache: the folio stays
    // mapped whole by PTEs (seen on the kernel: `write` after `free`, then `shrink`).
    if (maps.front().second) split_huge_pmd(vma, maps.front().first);
    return false;
  }
  if (maps.front().second) {
    pgd.set_huge_pmd(maps.front().first, pte_t{});
    folio_remove_rmap_pmd(head, vma);
    folio_put(head);
    return true;
  }
  unmap_large_ptes(head, vma, maps);
  return true;
}

// try_to_unmap_one() of a shmem large folio in one VMA (reclaim, or unmap_folio() before a
// split): a PMD goes first (TTU_SPLIT_HUGE_PMD zaps a file PMD), then its PTEs, their
// dirty bits passed to the folio; the page cache keeps the data. PTEs in a VM_LOCKED VMA
// stop reclaim's walk; a split's (@ignore_mlock) unmaps them too, and munlocks (seen on the
// kernel: MADV_COLD of part of a folio one page of which a locked VMA maps unmaps it all).
bool machine::try_to_unmap_file_large(folio& head, vm_area_struct& vma, bool ignore_mlock) {
  auto maps = large_folio_mappings(head, vma);
  if (!maps.empty() && maps.front().second) {
    split_huge_pmd(vma, maps.front().first);
    maps = large_folio_mappings(head, vma);
  }
  if (maps.empty()) return true;
  if (vma.vm_flags.has(vm_flag::locked) && !ignore_mlock) return false;
  for (auto [a, pmd] : maps)
    if (vma.vm_mm->pgd.get(a).dirty()) head.set(folio_flag::dirty);
  unmap_large_ptes(head, vma, maps);
  munlock_vma_folio(head, vma);
  return true;
}

// One rmap removal per run of consecutive pages, so that the folio is judged partially
// mapped (or not) after the whole batch, as folio_remove_rmap_ptes() does.
void machine::unmap_large_ptes(folio& head, vm_area_struct& vma, const std::vector<std::pair<vaddr_t, bool>>& maps) {
  auto& pgd = vma.vm_mm->pgd;
  std::size_t i = 0;
  while (i < maps.size()) {
    const pfn_t first = pgd.get(maps[i].first).pfn();
    std::size_t n = 0;
    for (; i + n < maps.size(); ++n) {
      const vaddr_t a = maps[i + n].first;
      if (a != page_addr(maps[i].first, n) || pgd.get(a).pfn().value != first.value + n) break;
      pgd.set(a, pte_t{});
    }
    folio_remove_rmap_ptes(head, folio_of(first), static_cast<unsigned>(n), vma);
    folio_put_refs(head, static_cast<int>(n));
    i += n;
  }
}

// Kernel: folio_mkclean(): only shared mappings write back to the file.
int machine::folio_mkclean(folio& f) {
  if (!f.mapped() || !f.file()) return 0;
  int cleaned = 0;
  rmap_walk_control rwc;
  rwc.invalid_vma = [](vm_area_struct& vma) { return !vma.vm_flags.has(vm_flag::shared); };
  rwc.rmap_one = [&](folio& fo, vm_area_struct& vma, vaddr_t addr) {
    if (!page_vma_mapped(fo, vma, addr)) return true;
    pte_t pte = vma.vm_mm->pgd.get(addr);
    if (pte.dirty() || pte.write()) {
      vma.vm_mm->pgd.set(addr, pte.wrprotect().mkclean());
      cleaned++;
    }
    return true;
  };
  rmap_walk(f, rwc);
  return cleaned;
}

}  // namespace rmapkit::mm
