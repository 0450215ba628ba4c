// Kernel: mm/debug.c and the VM_BUG_ONs scattered through mm/: the model's invariants,
// checked over the whole machine, one function per kind of object (the list:
// docs/architecture.md#invariants). check_invariants() returns the first violation
// found, described, or "".
#include <algorithm>
#include <map>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "internal.h"

namespace rmapkit::mm {

/// What the page tables refer to, counted by check_ptes() for the folio and swap checks.
struct machine::pte_census {
  std::map<std::uint64_t, int> ptes_of;              // page pfn -> PTEs mapping it
  std::map<std::uint64_t, std::uint64_t> swap_refs;  // slot -> PTE + shmem references
  std::set<std::uint64_t> dirty_ptes;                // folio (head) pfns some dirty PTE maps
  std::map<std::uint64_t, unsigned> locked_ptes;     // folio pfn -> PTEs of VM_LOCKED VMAs mapping it
  std::map<std::pair<std::uint64_t, std::uint64_t>, int> large_ptes_in_mm;  // (large folio pfn, mm id) -> PTEs, PMDs
  std::map<std::uint64_t, int> pmds_of;                                     // THP head pfn -> huge PMDs mapping it
};

namespace {

std::string where(const vm_area_struct& v) {
  return fmt::format("mm {} vma [{}, {}) pgoff {:#x}", v.vm_mm->name, v.vm_start, v.vm_end, v.vm_pgoff.value);
}

/// Every VMA of every mm, mm by mm, in address order.
std::vector<const vm_area_struct*> all_vmas(const std::vector<mm_struct*>& mms) {
  std::vector<const vm_area_struct*> vmas;
  for (const auto* mm : mms)
    for (const auto& [start, v] : mm->mm_mt) vmas.push_back(v);
  return vmas;
}

/// The AVCs on @v's chain: each points back at @v and at a live anon_vma of @v's family,
/// with the interval-tree key of @v's range; @v's own anon_vma is on it, its root last.
/// Collects the chain's anon_vmas in @chain.
std::string check_avcs(const vm_area_struct& v, const slab_cache<anon_vma>& anon_vmas,
                       std::set<const anon_vma*>& chain) {
  bool has_own = false;
  std::string bad;
  v.anon_vma_chain.for_each([&](anon_vma_chain& avc) {
    if (!bad.empty()) return;
    if (avc.vma != &v) bad = "an AVC on its chain points at another VMA";
    else if (!anon_vmas.owns(avc.anon_vma)) bad = "an AVC points at a freed anon_vma";
    else if (avc.anon_vma->root != v.anon_vma->root) bad = "its chain mixes anon_vma roots";
    else if (avc.cached_start != v.vm_pgoff.value || avc.cached_last != v.last_pgoff())
      bad = "an AVC's interval-tree key is stale";
    has_own = has_own || avc.anon_vma == v.anon_vma;
    chain.insert(avc.anon_vma);
  });
  if (!bad.empty()) return bad;
  if (!has_own) return "no AVC for its own anon_vma";
  if (v.anon_vma_chain.last()->anon_vma != v.anon_vma->root) return "the root is not last on its chain";
  return {};
}

/// Whether an rmap walk of @f visits @v at @a; if not, what the walk was given. A large
/// folio's walk visits a VMA once, at the folio's first address in it.
std::string check_found_by_walk(machine& m, const folio& f, const vm_area_struct& v, vaddr_t a, const std::string& at) {
  bool found = false;
  rmap_walk_control rwc;
  rwc.rmap_one = [&](folio&, vm_area_struct& wv, vaddr_t wa) {
    found = found || (&wv == &v && (wa == a || (f.is_large() && wa < a && a < page_addr(wa, f.nr_pages()))));
    return !found;
  };
  m.rmap_walk(const_cast<folio&>(f), rwc);
  if (found) return {};
  std::string chain;
  v.anon_vma_chain.for_each([&](anon_vma_chain& avc) { chain += fmt::format(" {}", avc.anon_vma->id); });
  return at + fmt::format(": not found by an rmap walk of its folio ({} index {:#x}; the VMA's chain:{})",
                          f.is_anon() ? fmt::format("anon_vma {}", f.anon()->id) : std::string("file"), f.index.value,
                          chain);
}

}  // namespace

std::string machine::check_invariants() const {
  const auto vmas = all_vmas(mms());
  if (auto e = check_vmas(vmas); !e.empty()) return e;
  if (auto e = check_anon_vmas(vmas); !e.empty()) return e;
  pte_census census;
  if (auto e = check_ptes(vmas, census); !e.empty()) return e;
  if (auto e = check_folios(census); !e.empty()) return e;
  if (auto e = check_lru_lists(); !e.empty()) return e;
  if (auto e = _anon->check(); !e.empty()) return e;
  if (auto e = _file->check(); !e.empty()) return e;
  if (auto e = check_files(); !e.empty()) return e;
  if (auto e = check_ksm_tree(); !e.empty()) return e;
  return check_swap(census);
}

/// Each mm's VMA cache, and each VMA: its range, its anon_vma and chain (one chain per
/// anon_vma: CVE-2022-42703 was two), its place in i_mmap.
std::string machine::check_vmas(const std::vector<const vm_area_struct*>& vmas) const {
  for (const auto* mm : mms()) {
    bool cache_found = mm->mmap_cache == nullptr;
    for (const auto& [start, v] : mm->mm_mt) cache_found = cache_found || v == mm->mmap_cache;
    if (!cache_found) return fmt::format("mm {}: mmap_cache points at a VMA it does not have", mm->name);
  }
  std::map<const anon_vma*, std::set<const anon_vma*>> chain_of_anon_vma;
  for (const auto* v : vmas) {
    if (v->vm_start >= v->vm_end) return where(*v) + ": empty or inverted range";
    if (!v->anon_vma != v->anon_vma_chain.empty()) return where(*v) + ": anon_vma and its chain disagree";
    if (!v->anon_vma) continue;
    std::set<const anon_vma*> chain;
    if (auto e = check_avcs(*v, _anon_vmas, chain); !e.empty()) return where(*v) + ": " + e;
    auto [it, fresh] = chain_of_anon_vma.emplace(v->anon_vma, chain);
    if (!fresh && it->second != chain)
      return where(*v) + ": two VMAs with one anon_vma have different chains (CVE-2022-42703)";
    if (v->vm_file && !v->shared_rb.linked()) return where(*v) + ": file VMA missing from i_mmap";
  }
  return {};
}

/// Each anon_vma: its root and parent, its interval tree, and its counts (active VMAs,
/// children, references) against what points at it.
std::string machine::check_anon_vmas(const std::vector<const vm_area_struct*>& vmas) const {
  std::map<const anon_vma*, int> active;
  for (const auto* v : vmas)
    if (v->anon_vma) active[v->anon_vma]++;
  std::map<const anon_vma*, unsigned> children;
  std::map<const anon_vma*, int> child_refs;
  _anon_vmas.for_each([&](const anon_vma& av) {
    if (!av.rb_root.empty()) {
      if (av.parent != &av) children[av.parent]++;
      else children[&av]++;
    }
    if (av.root != &av) child_refs[av.root]++;
  });
  std::string bad;
  _anon_vmas.for_each([&](const anon_vma& av) {
    if (!bad.empty()) return;
    auto name = fmt::format("anon_vma {}", av.id);
    if (av.root->root != av.root) bad = name + ": its root is not a root";
    // Only a live tree keeps its parent: an empty one pinned by KSM may outlive it.
    else if (!av.rb_root.empty() && av.parent != &av && av.parent->root != av.root)
      bad = name + ": parent and root disagree";
    else if (auto e = av.rb_root.verify(); !e.empty()) bad = name + ": interval tree: " + e;
    else if (av.num_active_vmas != static_cast<unsigned>(active[&av]))
      bad = fmt::format("{}: num_active_vmas {} but {} VMAs use it", name, av.num_active_vmas, active[&av]);
    else if (av.num_children != children[&av])
      bad = fmt::format("{}: num_children {} but {} children", name, av.num_children, children[&av]);
    else if (av.refcount != (av.rb_root.empty() ? 0 : 1) + child_refs[&av] + av.ksm_refs)
      bad = fmt::format("{}: refcount {} but {} expected", name, av.refcount,
                        (av.rb_root.empty() ? 0 : 1) + child_refs[&av] + av.ksm_refs);
  });
  return bad;
}

/// Every PTE of every VMA, counted in @census; present PTEs are checked by check_pte().
std::string machine::check_ptes(const std::vector<const vm_area_struct*>& vmas, pte_census& census) const {
  std::string bad;
  // Anon pages seen in the current mm: @vmas come mm by mm.
  std::set<std::uint64_t> seen_in_mm;
  const mm_struct* mm = nullptr;
  for (const auto* v : vmas) {
    if (v->vm_mm != mm) {
      seen_in_mm.clear();
      mm = v->vm_mm;
    }
    v->vm_mm->pgd.for_each(v->vm_start, v->vm_end, [&](vaddr_t a, pte_t pte) {
      if (!bad.empty()) return;
      if (pte.is_swap()) {
        census.swap_refs[pte.swap_entry().val]++;
        return;
      }
      if (pte.pfn() == _zero_pfn) {
        if (pte.write()) bad = where(*v) + fmt::format(": writable zero page at {}", a);
        return;
      }
      const folio& page = folio_of(pte.pfn());
      const folio& f = page_folio(pte.pfn());
      census.ptes_of[page.pfn.value]++;
      if (pte.dirty()) census.dirty_ptes.insert(f.pfn.value);
      if (v->vm_flags.has(vm_flag::locked)) census.locked_ptes[f.pfn.value]++;
      if (f.is_large()) census.large_ptes_in_mm[{f.pfn.value, v->vm_mm->id}]++;
      bad = check_pte(*v, a, pte, page, f, seen_in_mm);
    });
    if (!bad.empty()) return bad;
    v->vm_mm->pgd.for_each_huge(v->vm_start, v->vm_end, [&](vaddr_t h, pte_t pmd) {
      if (bad.empty()) bad = check_huge_pmd(*v, h, pmd, census, seen_in_mm);
    });
    if (!bad.empty()) return bad;
  }
  return {};
}

/// A PTE at @a in @v mapping @page of folio @f: the frame is in use, the write bit is
/// allowed, the folio belongs to this VMA at this address, and an rmap walk of it finds the PTE.
std::string machine::check_pte(const vm_area_struct& v, vaddr_t a, pte_t pte, const folio& page, const folio& f,
                               std::set<std::uint64_t>& seen_in_mm) const {
  auto at = fmt::format("{} at {} (pfn {})", where(v), a, page.pfn.value);
  if (!page.in_use()) return at + ": maps a free frame";
  if (pte.write() && f.is_anon() && !page.test(folio_flag::anon_exclusive))
    return at + ": writable anon PTE of a page that is not AnonExclusive";
  if (f.is_ksm()) {
    // KSM pages are found through their rmap_items (and forked children of them).
    std::string bad;
    if (!const_cast<machine*>(this)->ksm_get_folio(f.ksm_node())) bad = at + ": KSM page of a stale stable node";
    if (pte.write()) bad = at + ": writable KSM page";
    return bad;
  }
  if (linear_page_index(v, a).value != f.index.value + (page.pfn.value - f.pfn.value))
    return at + ": folio->index does not match vma_address()";
  if (f.is_anon()) {
    const anon_vma* av = f.anon();
    if (!_anon_vmas.owns(av)) return at + ": folio->mapping is a freed anon_vma";
    if (!v.anon_vma || av->root != v.anon_vma->root) return at + ": folio's anon_vma is of another family";
    if (!seen_in_mm.insert(page.pfn.value).second) return at + ": an anon page mapped twice in one mm";
  } else if (f.file() != v.vm_file) {
    return at + ": page-cache folio of another file";
  }
  // The walk must visit this VMA at this address.
  return check_found_by_walk(*const_cast<machine*>(this), f, v, a, at);
}

/// A huge PMD at @h in @v: it lies inside the VMA; the huge zero folio's is read-only in a
/// VMA with an anon_vma; a THP's maps the head of a PMD-sized anonymous folio of this VMA's
/// family at this address, writable only while exclusive, and an rmap walk of the folio
/// finds it. Counted in @census.
std::string machine::check_huge_pmd(const vm_area_struct& v, vaddr_t h, pte_t pmd, pte_census& census,
                                    std::set<std::uint64_t>& seen_in_mm) const {
  auto at = fmt::format("{} huge PMD at {}", where(v), h);
  if (h < v.vm_start || vaddr_t{h.value + PMD_SIZE} > v.vm_end) return at + ": reaches outside its VMA";
  if (pmd.pfn() == HUGE_ZERO_PFN) {
    if (pmd.write()) return at + ": writable huge zero folio";
    if (!v.anon_vma) return at + ": huge zero folio in a VMA with no anon_vma";
    return {};
  }
  const folio& f = folio_of(pmd.pfn());
  if (!f.in_use() || f.order != PMD_ORDER || f.head_pfn() != f.pfn || (!f.anon() && !f.file()))
    return at + ": does not map the head of a PMD-sized anonymous or page-cache folio";
  census.pmds_of[f.pfn.value]++;
  census.large_ptes_in_mm[{f.pfn.value, v.vm_mm->id}]++;
  if (pmd.dirty()) census.dirty_ptes.insert(f.pfn.value);
  if (v.vm_flags.has(vm_flag::locked)) census.locked_ptes[f.pfn.value]++;
  if (linear_page_index(v, h).value != f.index.value) return at + ": folio->index does not match vma_address()";
  if (f.file()) {
    if (f.file() != v.vm_file) return at + ": page-cache folio of another file";
    if (pmd.write() && !v.vm_flags.has(vm_flag::shared)) return at + ": writable page cache in a private mapping";
    return check_found_by_walk(*const_cast<machine*>(this), f, v, h, at);
  }
  if (pmd.write() && !f.test(folio_flag::anon_exclusive)) return at + ": writable, but the folio is not AnonExclusive";
  if (!v.anon_vma || f.anon()->root != v.anon_vma->root) return at + ": folio's anon_vma is of another family";
  for (std::uint64_t i = 0; i < HPAGE_PMD_NR; ++i)
    if (!seen_in_mm.insert(f.pfn.value + i).second) return at + ": an anon page mapped twice in one mm";
  return check_found_by_walk(*const_cast<machine*>(this), f, v, h, at);
}

/// Every folio in use: its map count and references against what @census counted, and
/// its LRU and mlock state.
std::string machine::check_folios(const pte_census& census) const {
  for (std::size_t pfn = 2; pfn < _frames.size(); ++pfn) {
    const folio& f = _frames[pfn];
    if (!f.in_use()) continue;
    int n = census.ptes_of.count(pfn) ? census.ptes_of.at(pfn) : 0;
    if (f.mapcount != n) return fmt::format("pfn {}: mapcount {} but {} PTEs map it", pfn, f.mapcount, n);
    if (f.test(folio_flag::anon_exclusive) && precise_page_mapcount(f) > 1)
      return fmt::format("pfn {}: AnonExclusive but mapped {} times", pfn, precise_page_mapcount(f));
    if (f.is_large()) {
      if (f.pfn != f.head_pfn()) continue;  // a tail: its folio is checked at its head
      if (auto e = check_large_folio(f, census); !e.empty()) return fmt::format("pfn {}: {}", pfn, e);
    }
    const int mapped = f.is_large() ? large_state(f).mapcount : f.mapcount;
    // The page cache holds a reference for each page of a folio it holds.
    const bool cached = f.file() && f.file()->i_pages.count(f.index.value);
    int refs = mapped + (cached ? static_cast<int>(f.nr_pages()) : 0) + (f.test(folio_flag::swapcache) ? 1 : 0);
    if (f.refcount != refs) return fmt::format("pfn {}: refcount {} but {} references", pfn, f.refcount, refs);
    const unsigned locked = census.locked_ptes.count(pfn) ? census.locked_ptes.at(pfn) : 0U;
    if (auto e = check_folio_lru(f, census.dirty_ptes.count(pfn) != 0, locked); !e.empty())
      return fmt::format("pfn {}: {}", pfn, e);
  }
  return {};
}

/// A large folio's own state: its map count is its pages' sum; each tracked mm maps it
/// at most as often as its slot says (a mapping made while no slot was free is not
/// counted); a folio not maybe-shared has one slot holding every mapping; and it is on the
/// deferred-split queue exactly when it is marked partially mapped.
std::string machine::check_large_folio(const folio& head, const pte_census& census) const {
  const auto& st = large_state(head);
  int sum = 0;
  for (std::uint64_t i = 0; i < head.nr_pages(); ++i) {
    const folio& page = _frames[head.pfn.value + i];
    if (page.order != head.order || !page.in_use()) return fmt::format("page {} is not part of the folio", i);
    sum += page.mapcount;
  }
  const int pmds = census.pmds_of.count(head.pfn.value) ? census.pmds_of.at(head.pfn.value) : 0;
  if (st.entire_mapcount != pmds) return fmt::format("entire mapcount {} but {} PMDs map it", st.entire_mapcount, pmds);
  if (st.mapcount != sum + pmds)
    return fmt::format("large mapcount {} but its pages' sum {} and {} PMDs", st.mapcount, sum, pmds);
  for (std::size_t i = 0; i < 2; ++i) {
    if (st.mm_id[i] == 0) {
      if (st.mm_mapcount[i] != 0) return fmt::format("free mm slot {} counts {}", i, st.mm_mapcount[i]);
      continue;
    }
    auto it = census.large_ptes_in_mm.find({head.pfn.value, st.mm_id[i]});
    const int actual = it == census.large_ptes_in_mm.end() ? 0 : it->second;
    if (st.mm_mapcount[i] <= 0 || st.mm_mapcount[i] > actual)
      return fmt::format("mm slot {} counts {} mappings, its mm has {}", i, st.mm_mapcount[i], actual);
  }
  if (!st.maybe_shared && st.mapcount > 0 && st.mm_mapcount[0] != st.mapcount && st.mm_mapcount[1] != st.mapcount)
    return "not maybe-shared, yet no mm slot holds every mapping";
  const bool queued = std::find(_deferred_split.begin(), _deferred_split.end(), head.pfn) != _deferred_split.end();
  if (queued != st.partially_mapped) return "partially mapped and on the deferred-split queue disagree";
  return {};
}

/// Every file's i_mmap interval tree.
std::string machine::check_files() const {
  std::string bad;
  _files.for_each([&](const address_space& as) {
    if (auto e = as.i_mmap.verify(); !e.empty() && bad.empty()) bad = "i_mmap of " + as.name + ": " + e;
  });
  return bad;
}

/// Every swap slot's count against its references: the PTEs @census counted, and shmem's
/// (added to @census here).
std::string machine::check_swap(pte_census& census) const {
  _files.for_each([&](const address_space& as) {
    for (const auto& [index, e] : as.swapped) census.swap_refs[e.val]++;
  });
  const auto& swap_map = _swap->swap_map;
  for (std::size_t slot = 1; slot <= swap_map.size(); ++slot) {
    std::uint64_t n = census.swap_refs.count(slot) ? census.swap_refs[slot] : 0;
    if (swap_map[slot - 1] != n)
      return fmt::format("swap slot {}: count {} but {} references", slot, swap_map[slot - 1], n);
  }
  return {};
}

/// One folio's LRU and mlock state, and its swap copy.
std::string machine::check_folio_lru(const folio& f, bool dirty_pte, unsigned locked_ptes) const {
  if (!f.test(folio_flag::lru)) return "in use but on no LRU list";
  if (f.is_large()) {
    // The kernel's count for a large folio (mlock.cc): mlocked while it counts, and only
    // while some VM_LOCKED VMA still maps a page of it.
    if (f.test(folio_flag::mlocked) != (f.mlock_count > 0)) return "mlocked and its mlock_count disagree";
    if (f.test(folio_flag::mlocked) && locked_ptes == 0) return "mlocked but no VM_LOCKED VMA maps a page of it";
  } else if (f.mlock_count != locked_ptes) {
    return fmt::format("mlock_count {} but {} PTEs of VM_LOCKED VMAs map it", f.mlock_count, locked_ptes);
  } else if (f.test(folio_flag::mlocked) != (locked_ptes > 0)) {
    return locked_ptes ? "mapped by a VM_LOCKED VMA but not mlocked" : "mlocked but no VM_LOCKED VMA maps it";
  }
  if (f.test(folio_flag::unevictable) != f.test(folio_flag::mlocked))
    return "on the unevictable list iff mlocked: broken";
  if (f.test(folio_flag::unevictable) && f.test(folio_flag::active)) return "both active and unevictable";
  // A clean swap-cache folio is what its slot holds: reclaim may drop it without a write.
  if (f.test(folio_flag::swapcache) && !f.test(folio_flag::dirty) && !dirty_pte &&
      _swap->content.at(f.swap.val - 1) != f.content)
    return "clean in the swap cache, but its content differs from its slot's";
  return {};
}

/// The lists themselves: links both ways, sizes, and every folio on the list its flags name.
std::string machine::check_lru_lists() const {
  for (std::size_t l = 0; l < NR_LRU_LISTS; ++l) {
    const auto& h = _lruvec->lists[l];
    std::uint64_t n = 0;
    std::uint32_t prev = 0;
    for (std::uint32_t p = h.first; p; prev = p, p = _frames[p].lru_next) {
      const folio& f = _frames[p];
      if (++n > h.nr) return fmt::format("LRU list {}: longer than its count {}", l, h.nr);
      if (f.lru_prev != prev) return fmt::format("LRU list {}: pfn {} has a bad prev link", l, p);
      if (!f.in_use() || !f.test(folio_flag::lru))
        return fmt::format("LRU list {}: pfn {} is free or not marked lru", l, p);
      if (static_cast<std::size_t>(folio_lru_list(f)) != l)
        return fmt::format("LRU list {}: pfn {} belongs on another list", l, p);
    }
    if (n != h.nr || h.last != prev) return fmt::format("LRU list {}: count {} or tail wrong ({} found)", l, h.nr, n);
  }
  return {};
}

}  // namespace rmapkit::mm
