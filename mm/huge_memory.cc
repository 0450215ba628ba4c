// Kernel: mm/huge_memory.c and the large-folio parts of mm/memory.c and include/linux/rmap.h
// (v6.18): which order an anonymous fault allocates, the per-mm accounting of a large
// folio's mappings (CONFIG_MM_ID), COW reuse of a PTE-mapped large folio, and the
// deferred-split queue and the split that empties it; PMD-mapped THPs: the PMD fault (a new
// folio, or the huge zero folio on a read), fork, COW and reuse of a PMD, its zap, and the
// split of a PMD into a table of PTEs. MADV_COLLAPSE is in khugepaged.cc.
#include <algorithm>
#include <cstddef>
#include <stdexcept>
#include <utility>
#include <vector>

#include "internal.h"
#include "rmapkit/mm/content.h"

namespace rmapkit::mm {

const large_folio_state& machine::large_state(const folio& head) const {
  auto it = _large.find(head.pfn.value);
  if (it == _large.end()) throw std::logic_error("large_state: not the head of a large folio");
  return it->second;
}

large_folio_state& machine::mutable_large_state(folio& head) {
  return const_cast<large_folio_state&>(std::as_const(*this).large_state(head));
}

// thp_vma_allowable_orders() + thp_vma_suitable_order() + pte_range_none(): a size is
// tried only where its block fits the VMA and no PTE of the block is in use, the zero
// page's included. Order 9 is not tried here: a PTE fault cannot map a PMD, and where one
// could, pmd_fault_suitable() sent the fault to the PMD path first.
unsigned machine::anon_fault_order(const vm_area_struct& vma, vaddr_t addr) const {
  if (!vma.is_anonymous() || !vma.vm_flags.has(vm_flag::hugepage) || vma.vm_flags.has(vm_flag::nohugepage)) return 0;
  const auto& pgd = vma.vm_mm->pgd;
  for (unsigned order = PMD_ORDER - 1; order > 0; --order) {
    if ((_thp_anon_orders & (1U << order)) == 0) continue;
    if (!thp_vma_suitable_order(vma, addr, order)) continue;
    const std::uint64_t nr = std::uint64_t{1} << order;
    const vaddr_t start{addr.value & ~(nr * PAGE_SIZE - 1)};
    bool none = true;
    for (std::uint64_t i = 0; none && i < nr; ++i) none = pgd.get(page_addr(start, i)).none();
    if (none) return order;
  }
  return 0;
}

// The two mm slots. A mapping in a tracked mm counts in its slot; an untracked mm takes a
// free slot, and the folio is then maybe shared unless the new slot holds every mapping;
// with both slots taken nothing is tracked and the folio stays maybe shared.
void machine::large_mapcount_add(folio& head, const mm_struct& mm, int n) {
  auto& st = mutable_large_state(head);
  st.mapcount += n;
  for (std::size_t i = 0; i < 2; ++i) {
    if (st.mm_id[i] == mm.id) {
      st.mm_mapcount[i] += n;
      return;
    }
  }
  for (std::size_t i = 0; i < 2; ++i) {
    if (st.mm_id[i] == 0) {
      st.mm_id[i] = mm.id;
      st.mm_mapcount[i] = n;
      if (st.mapcount != n) st.maybe_shared = true;
      return;
    }
  }
  st.maybe_shared = true;
}

// A slot whose mm still maps the folio changes nothing else. Otherwise (the slot emptied,
// or the mm was never tracked) the folio is exclusive again when one slot holds every
// mapping: the kernel looks only then, so a folio once shared may stay "maybe shared"
// while a tracked mm unmaps part of it.
void machine::large_mapcount_sub(folio& head, const mm_struct& mm, int n) {
  auto& st = mutable_large_state(head);
  st.mapcount -= n;
  if (st.mapcount < 0) throw std::logic_error("large_mapcount_sub: mapcount underflow");
  for (std::size_t i = 0; i < 2; ++i) {
    if (st.mm_id[i] != mm.id) continue;
    st.mm_mapcount[i] -= n;
    if (st.mm_mapcount[i] > 0) return;
    st.mm_id[i] = 0;
    st.mm_mapcount[i] = 0;
    break;
  }
  if (st.mm_mapcount[0] == st.mapcount || st.mm_mapcount[1] == st.mapcount) st.maybe_shared = false;
}

// __wp_can_reuse_large_anon_folio(): a folio mapped by one page only is given up (copied
// from) rather than kept for one page; otherwise it is reused when it cannot be shared:
// one mm holds every mapping, and every reference is a mapping.
bool machine::can_reuse_large_anon_folio(folio& head, const vm_area_struct& vma) {
  const auto& st = large_state(head);
  if (st.mapcount <= 1 || st.maybe_shared) return false;
  if (head.refcount != st.mapcount) return false;
  return (st.mm_id[0] == vma.vm_mm->id && st.mm_mapcount[0] == st.mapcount) ||
         (st.mm_id[1] == vma.vm_mm->id && st.mm_mapcount[1] == st.mapcount);
}

void machine::deferred_split_folio(folio& head) {
  auto& st = mutable_large_state(head);
  if (st.partially_mapped) return;
  st.partially_mapped = true;
  _deferred_split.push_back(head.pfn);
}

// What a split's unmap and remap (try_to_migrate(), remove_migration_ptes() with
// RMP_USE_SHARED_ZEROPAGE) do to each mapping of @head: a dirty PTE dirties the folio; a
// page never written, or written only with zeroes, is mapped to the shared zero page
// instead, and loses that mapping and its reference, unless it is mlocked by then. Each
// page, now a folio, is remapped by a walk of its own, in the walk's order: a mapping in a
// VM_LOCKED VMA mlocks it, and the mappings after that keep it too (a fork child after its
// mlocking parent). The folio's own mlock does not count: unmapping it for the split
// munlocked it. Returns, per page, its mappings in VM_LOCKED VMAs.
std::vector<unsigned> machine::split_remap(folio& head) {
  const std::uint64_t nr = head.nr_pages(), first = head.pfn.value;
  std::vector<unsigned> locked(nr, 0);
  rmap_walk_control rwc;
  rwc.rmap_one = [&](folio& f, vm_area_struct& vma, vaddr_t) {
    const bool vm_locked = vma.vm_flags.has(vm_flag::locked);
    for (std::uint64_t i = 0; i < nr; ++i) {
      folio& page = _frames[first + i];
      const auto a = vma_address(vma, pgoff_t{f.index.value + i});
      if (page.mapcount == 0 || !a) continue;
      const pte_t pte = vma.vm_mm->pgd.get(*a);
      if (!pte.present() || pte.pfn() != page.pfn) continue;
      if (pte.dirty()) head.set(folio_flag::dirty);
      if (vm_locked) {
        ++locked[i];
      } else if (page.content == content::filled(0) && locked[i] == 0) {
        vma.vm_mm->pgd.set(*a, pte_t::mk_present(_zero_pfn, false).mkyoung());
        page.mapcount--;
        large_mapcount_sub(head, *vma.vm_mm, 1);
        head.refcount--;
      }
    }
    return true;
  };
  rmap_walk(head, rwc);
  return locked;
}

// split_folio() to order 0 of an anonymous folio whose every reference is a mapping, or
// one of @caller_pins the caller holds (any other holder makes the kernel's split fail, and
// the folio stays queued). Pages keep their frames and their PTEs: each mapped page becomes
// a folio with the head's mapping, its own index, its own AnonExclusive bit and the head's
// other flags, on the LRU; one that a VM_LOCKED VMA maps is mlocked, one mapped nowhere
// freed. A head the caller pins stays the caller's, off the LRU, mapped or not.
bool machine::split_large_folio(folio& head, int caller_pins) {
  if (head.file()) return split_file_folio(head, caller_pins);
  if (head.refcount != large_state(head).mapcount + caller_pins) return false;
  split_huge_pmds_of(head);
  const std::vector<unsigned> locked = split_remap(head);
  const std::uint64_t nr = head.nr_pages(), first = head.pfn.value;
  const folio_mapping mapping = head.mapping;
  const pgoff_t index = head.index;
  if (head.test(folio_flag::lru)) lruvec_del_folio(head);
  constexpr auto per_page = static_cast<std::uint16_t>(folio_flag::anon_exclusive) |
                            static_cast<std::uint16_t>(folio_flag::in_use);
  constexpr auto mlock_state = static_cast<std::uint16_t>(folio_flag::mlocked) |
                               static_cast<std::uint16_t>(folio_flag::unevictable) |
                               static_cast<std::uint16_t>(folio_flag::lru);
  const auto folio_wide = static_cast<std::uint16_t>(head.flags & ~per_page & ~mlock_state);
  _large.erase(first);
  std::erase(_deferred_split, head.pfn);
  for (std::uint64_t i = 0; i < nr; ++i) {
    folio& page = _frames[first + i];
    const int pins = i == 0 ? caller_pins : 0;
    page.order = 0;
    if (page.mapcount == 0 && pins == 0) {
      free_frame(page);
      continue;
    }
    page.mapping = mapping;
    page.index = pgoff_t{index.value + i};
    if (i > 0 && mapping.holds<anon_vma>()) _anon->split(head, page);
    page.refcount = page.mapcount + pins;
    page.flags = static_cast<std::uint16_t>((page.flags & per_page) | folio_wide);
    page.mlock_count = static_cast<std::uint16_t>(locked[i]);
    if (locked[i] > 0) {
      page.set(folio_flag::mlocked);
      page.set(folio_flag::unevictable);
      page.clear(folio_flag::active);
    }
    if (pins == 0) lruvec_add_folio(page);
  }
  return true;
}

// split_folio() of a shmem folio: every page a folio of its own (cut_file_folio()).
bool machine::split_file_folio(folio& head, int caller_pins, std::vector<pfn_t>* isolated_tails) {
  std::vector<folio_piece> pieces;
  for (std::uint64_t i = 0; i < head.nr_pages(); ++i) pieces.push_back({pfn_t{head.pfn.value + i}, 0});
  return cut_file_folio(head, caller_pins, pieces, isolated_tails);
}

// folio_split() of a page-cache folio at @at, as a punched hole asks (truncate_inode_partial_folio(),
// a non-uniform split): the folio is halved as a buddy allocator halves a block, the half
// without @at staying a folio of its own, until @at is a page of its own (seen on the kernel: a
// hole at page 100 of a PMD folio leaves folios of 64, 32 and 4 pages before it, and of 2,
// 8, 16, 128 and 256 after page 101).
bool machine::split_file_folio_at(folio& head, pfn_t at) {
  std::vector<folio_piece> pieces;
  std::uint64_t lo = head.pfn.value;
  for (unsigned order = head.order; order-- > 0;) {
    const std::uint64_t half = std::uint64_t{1} << order;
    if (at.value < lo + half) {
      pieces.push_back({pfn_t{lo + half}, order});
    } else {
      pieces.push_back({pfn_t{lo}, order});
      lo += half;
    }
  }
  pieces.push_back({pfn_t{lo}, 0});
  std::ranges::sort(pieces, {}, [](const folio_piece& p) { return p.pfn.value; });
  return cut_file_folio(head, 0, pieces, nullptr);
}

// The split of a page-cache folio into @pieces (ascending, covering it): held by its mappings,
// the page cache (a reference per page) and @caller_pins, and nothing else, it is unmapped
// everywhere (unmap_folio()) and, unlike an anonymous folio, not mapped again: its pages stay
// in the page cache and fault in again (seen on the kernel: MADV_PAGEOUT or MADV_COLD of part
// of a 64k shmem folio leaves all of it unmapped, nothing paged out). Mappings in VM_LOCKED
// VMAs go too (unmap_folio() ignores mlock for a page-cache folio). Each piece takes the
// head's flags; the head, which the caller may pin, stays the caller's; the other pieces go
// to the LRU, or each with an isolation reference to @isolated_tails (split_folio_to_list(),
// as shmem_writeout() asks).
bool machine::cut_file_folio(folio& head, int caller_pins, const std::vector<folio_piece>& pieces,
                             std::vector<pfn_t>* isolated_tails) {
  const std::uint64_t first = head.pfn.value;
  if (head.refcount != static_cast<int>(head.nr_pages()) + folio_mapcount(head) + caller_pins) return false;
  if (folio_mapped(head) && !try_to_unmap(head, true)) return false;
  const bool listed = head.test(folio_flag::lru);
  if (listed) lruvec_del_folio(head);
  const folio_mapping mapping = head.mapping;
  const pgoff_t index = head.index;
  constexpr auto mlock_state = static_cast<std::uint16_t>(folio_flag::mlocked) |
                               static_cast<std::uint16_t>(folio_flag::unevictable) |
                               static_cast<std::uint16_t>(folio_flag::lru);
  const auto flags = static_cast<std::uint16_t>(head.flags & ~mlock_state);
  const std::uint16_t tail_flags = _frames[first + 1].flags;
  _large.erase(first);
  std::erase(_deferred_split, head.pfn);
  for (const auto [at, order] : pieces) {
    const std::uint64_t nr = std::uint64_t{1} << order;
    for (std::uint64_t i = 0; i < nr; ++i) {
      folio& page = _frames[at.value + i];
      page.order = static_cast<std::uint8_t>(order);
      page.mapping = mapping;
      page.index = pgoff_t{index.value + (at.value + i - first)};
      page.flags = i == 0 ? flags : tail_flags;
      page.mlock_count = 0;
      page.refcount = 0;
    }
    folio& piece = _frames[at.value];
    piece.refcount = static_cast<int>(nr) + (at.value == first ? caller_pins : 0);
    if (order > 0) _large.emplace(at.value, large_folio_state{});
    if (at.value != first && isolated_tails) {
      folio_get(piece);
      isolated_tails->push_back(piece.pfn);
    } else if (at.value != first || listed) {
      lruvec_add_folio(piece);
    }
  }
  return true;
}

std::uint64_t machine::deferred_split_scan() {
  std::uint64_t split = 0;
  for (const pfn_t pfn : std::vector<pfn_t>(_deferred_split)) split += split_large_folio(folio_of(pfn)) ? 1U : 0U;
  return split;
}

// ---- PMD-mapped THP ------------------------------------------------------------------

namespace {

constexpr vaddr_t pmd_start(vaddr_t a) { return vaddr_t{a.value & ~(PMD_SIZE - 1)}; }
constexpr vaddr_t pmd_end(vaddr_t a) { return vaddr_t{pmd_start(a).value + PMD_SIZE}; }

}  // namespace

// thp_vma_suitable_order() for the PMD order, and pmd_none(): the 2 MiB block lies inside
// the VMA with its offsets aligned alike, and its PMD is empty. A PTE table there, even an
// empty one, makes the fault a PTE fault (research fact 27: CONFIG_PT_RECLAIM frees a table
// only when a MADV_DONTNEED covers all of it).
bool machine::pmd_fault_suitable(const vm_area_struct& vma, vaddr_t addr) const {
  if ((_thp_anon_orders & (1U << PMD_ORDER)) == 0) return false;
  if (!vma.is_anonymous() || !vma.vm_flags.has(vm_flag::hugepage) || vma.vm_flags.has(vm_flag::nohugepage))
    return false;
  if (!thp_vma_suitable_order(vma, addr, PMD_ORDER)) return false;
  const vaddr_t h = pmd_start(addr);
  return !vma.vm_mm->pgd.has_pte_table(h) && !vma.vm_mm->pgd.huge_pmd(h);
}

// do_huge_pmd_anonymous_page(): the anon_vma is prepared first, for the huge zero folio
// too, so a fork copies a huge zero PMD (research, "Later findings"). use_zero_page is 1 in every
// run.
int machine::do_huge_pmd_anonymous_page(vm_area_struct& vma, vaddr_t addr, bool write) {
  anon_vma_prepare(vma);
  if (!write) {
    vma.vm_mm->pgd.set_huge_pmd(addr, pte_t::mk_present(HUGE_ZERO_PFN, false));
    return 0;
  }
  map_anon_folio_pmd(vma, pmd_start(addr));
  return 0;
}

// Every page of a PMD-mapped folio gets AnonExclusive @on. The kernel keeps the head page's
// bit for a PMD mapping; the model keeps every page's bit equal while a PMD maps the folio,
// which is what a PMD split hands to each page.
void machine::assign_pmd_anon_exclusive(folio& head, bool on) {
  for (std::uint64_t i = 0; i < head.nr_pages(); ++i)
    _frames[head.pfn.value + i].assign(folio_flag::anon_exclusive, on);
}

// A new, zero-filled, exclusive PMD-sized folio mapped by one dirty, young PMD, writable
// where the VMA is: one reference, one entire mapping, no page mapped by a PTE
// (folio_add_new_anon_rmap() at RMAP_LEVEL_PMD).
void machine::map_anon_folio_pmd(vm_area_struct& vma, vaddr_t haddr) {
  anon_vma_prepare(vma);
  folio& f = alloc_folio(PMD_ORDER);
  f.mapping = vma.anon_vma;
  f.index = linear_page_index(vma, haddr);
  f.set(folio_flag::swapbacked);
  assign_pmd_anon_exclusive(f, true);
  mutable_large_state(f).entire_mapcount = 1;
  large_mapcount_add(f, *vma.vm_mm, 1);
  _anon->add_new(f, vma, haddr, true);
  folio_add_lru(f, &vma);
  const bool write = vma.vm_flags.has(vm_flag::write);  // maybe_pmd_mkwrite()
  vma.vm_mm->pgd.set_huge_pmd(haddr, pte_t::mk_present(f.pfn, write).mkyoung().mkdirty());
}

// do_huge_pmd_wp_page(). A write to the huge zero folio gets a new THP, no split
// (do_huge_zero_wp_pmd(), research fact 6). A THP is reused when its head is exclusive, or
// when this PMD is its only reference (fact 17); otherwise the PMD is split and the fault
// falls back to the PTE, where one page is copied (fact 16).
int machine::do_huge_pmd_wp_page(vm_area_struct& vma, vaddr_t addr, pte_t pmd) {
  auto& pgd = vma.vm_mm->pgd;
  if (pmd.pfn() == HUGE_ZERO_PFN) {
    pgd.set_huge_pmd(addr, pte_t{});
    map_anon_folio_pmd(vma, pmd_start(addr));
    return 0;
  }
  folio& f = folio_of(pmd.pfn());
  bool reuse = f.test(folio_flag::anon_exclusive);
  if (!reuse && f.refcount == 1) {
    folio_move_anon_rmap(f, vma);
    assign_pmd_anon_exclusive(f, true);
    reuse = true;
  }
  if (reuse) {
    pgd.set_huge_pmd(addr, pmd.mkwrite().mkdirty().mkyoung());
    return 0;
  }
  split_huge_pmd(vma, addr);
  return do_wp_page(vma, addr, pgd.get(addr));
}

// touch_pmd(): an access through a huge PMD that needs no fault sets its accessed bit, and a
// write its dirty bit. Returns false when no huge PMD maps @addr.
bool machine::touch_huge_pmd(mm_struct& mm, vaddr_t addr, bool write) {
  auto pmd = mm.pgd.huge_pmd(addr);
  if (!pmd) return false;
  if (pmd->pfn() != HUGE_ZERO_PFN) mm.pgd.set_huge_pmd(addr, write ? pmd->mkyoung().mkdirty() : pmd->mkyoung());
  return true;
}

// __split_huge_pmd_locked(): the PMD over @addr becomes a table of 512 PTEs. The huge zero
// folio's become the small zero page's; a THP's map the same pages with the PMD's write,
// accessed and dirty bits, each page taking the head's AnonExclusive and a reference
// (folio_add_anon_rmap_ptes()), and then the PMD's mapping goes (folio_remove_rmap_pmd()).
// A dirty PMD dirties the folio. The folio stays whole and is not partially mapped: every
// page is mapped now (fact 24); in a VM_LOCKED VMA it stays mlocked, its PTEs mapping all
// of it inside the VMA (seen on 6.18 with `report flags`: corpus v2/53).
void machine::split_huge_pmd(vm_area_struct& vma, vaddr_t addr) {
  auto& pgd = vma.vm_mm->pgd;
  const vaddr_t h = pmd_start(addr);
  const auto pmd = pgd.huge_pmd(h);
  if (!pmd) return;
  pgd.set_huge_pmd(h, pte_t{});
  if (pmd->pfn() == HUGE_ZERO_PFN) {
    for (std::uint64_t i = 0; i < HPAGE_PMD_NR; ++i) pgd.set(page_addr(h, i), pte_t::mk_present(_zero_pfn, false));
    return;
  }
  folio& f = folio_of(pmd->pfn());
  if (!vma.is_anonymous()) {
    // A page-cache folio's PMD is not split but zapped (research fact 37): its pages stay in
    // the page cache, and faults map them again, by PTEs.
    if (pmd->dirty()) f.set(folio_flag::dirty);
    if (pmd->young()) f.set(folio_flag::referenced);
    folio_remove_rmap_pmd(f, vma);
    munlock_vma_folio(f, vma);
    folio_put(f);
    return;
  }
  const bool exclusive = f.test(folio_flag::anon_exclusive);
  for (std::uint64_t i = 0; i < HPAGE_PMD_NR; ++i) {
    folio& page = _frames[f.pfn.value + i];
    page.mapcount++;
    page.assign(folio_flag::anon_exclusive, exclusive);
    pgd.set(page_addr(h, i), page_table::page_of_huge(*pmd, page_addr(h, i)));
  }
  f.refcount += static_cast<int>(HPAGE_PMD_NR - 1);
  large_mapcount_add(f, *vma.vm_mm, static_cast<int>(HPAGE_PMD_NR));
  if (pmd->dirty()) f.set(folio_flag::dirty);
  folio_remove_rmap_pmd(f, vma);
}

// vma_adjust_trans_huge(): a huge PMD cannot straddle two VMAs. One across a boundary at
// @addr is split to PTEs (research fact 24; merging the VMAs back does not restore it), a
// page-cache folio's zapped (fact 37).
void machine::vma_adjust_trans_huge(vm_area_struct& vma, vaddr_t addr) {
  if ((addr.value & (PMD_SIZE - 1)) != 0) split_huge_pmd(vma, addr);
}

// A split of the folio itself first splits every PMD that maps it (unmap_folio() with
// TTU_SPLIT_HUGE_PMD).
void machine::split_huge_pmds_of(folio& head) {
  if (large_state(head).entire_mapcount == 0) return;
  std::vector<std::pair<vm_area_struct*, vaddr_t>> pmds;
  rmap_walk_control rwc;
  rwc.rmap_one = [&](folio& f, vm_area_struct& vma, vaddr_t a) {
    if (auto pmd = vma.vm_mm->pgd.huge_pmd(a); pmd && pmd->pfn() == f.pfn) pmds.emplace_back(&vma, a);
    return true;
  };
  rmap_walk(head, rwc);
  for (auto [vma, a] : pmds) split_huge_pmd(*vma, a);
}

// folio_remove_rmap_pmd(). When the last PMD goes, a folio some of whose pages are still
// mapped by PTEs, but not all, is partially mapped (__folio_remove_rmap()).
void machine::folio_remove_rmap_pmd(folio& head, const vm_area_struct& vma) {
  auto& st = mutable_large_state(head);
  if (--st.entire_mapcount < 0) throw std::logic_error("folio_remove_rmap_pmd: entire mapcount underflow");
  large_mapcount_sub(head, *vma.vm_mm, 1);
  if (st.entire_mapcount > 0 || !head.is_anon()) return;
  std::uint64_t by_pte = 0;
  for (std::uint64_t i = 0; i < head.nr_pages(); ++i) by_pte += _frames[head.pfn.value + i].mapcount > 0 ? 1U : 0U;
  if (by_pte > 0 && by_pte < head.nr_pages()) deferred_split_folio(head);
}

// zap_pmd_range(): a huge PMD the range covers whole goes whole (zap_huge_pmd(), no split:
// fact 21); one it covers in part is split first, and its PTEs zapped with the rest.
void machine::zap_huge_pmds(vm_area_struct& vma, vaddr_t start, vaddr_t end) {
  auto& pgd = vma.vm_mm->pgd;
  std::vector<std::pair<vaddr_t, pte_t>> leaves;
  pgd.for_each_huge(start, end, [&](vaddr_t h, pte_t pmd) { leaves.emplace_back(h, pmd); });
  for (auto [h, pmd] : leaves) {
    if (h < start || pmd_end(h) > end) {
      split_huge_pmd(vma, h);
      continue;
    }
    pgd.set_huge_pmd(h, pte_t{});
    if (pmd.pfn() == HUGE_ZERO_PFN) continue;
    folio& f = folio_of(pmd.pfn());
    if (!f.is_anon()) {  // a page-cache folio keeps what its mapping did, as its PTEs' zap does
      if (pmd.dirty()) f.set(folio_flag::dirty);
      if (pmd.young() && vma.has_recency()) folio_mark_accessed(f);
    }
    folio_remove_rmap_pmd(f, vma);
    munlock_vma_folio(f, vma);
    folio_put(f);
  }
}

// copy_huge_pmd(): a PMD is copied as a PMD (fact 14), write-protected on both sides and
// old in the child; the folio is no longer exclusive. The huge zero folio's PMD is copied
// as it is.
void machine::copy_huge_pmds(vm_area_struct& dst, vm_area_struct& src) {
  auto& spgd = src.vm_mm->pgd;
  std::vector<std::pair<vaddr_t, pte_t>> leaves;
  spgd.for_each_huge(src.vm_start, src.vm_end, [&](vaddr_t h, pte_t pmd) { leaves.emplace_back(h, pmd); });
  for (auto [h, pmd] : leaves) {
    // A page-cache folio's PMD is not copied: the child faults it in again.
    if (!dst.is_anonymous()) continue;
    if (pmd.pfn() != HUGE_ZERO_PFN) {
      folio& f = folio_of(pmd.pfn());
      folio_get(f);
      mutable_large_state(f).entire_mapcount++;
      large_mapcount_add(f, *dst.vm_mm, 1);
      assign_pmd_anon_exclusive(f, false);
      pmd = pmd.wrprotect();
      spgd.set_huge_pmd(h, pmd);
    }
    dst.vm_mm->pgd.set_huge_pmd(h, pmd.mkold());
  }
}

// free_pgtables(): the tables under [start, end), now that no VMA is there, except in a
// 2 MiB slot a neighbouring VMA still reaches into (floor and ceiling): its table stays
// (research fact 27: a munmap of one page keeps the table, so a later fault there is no
// PMD fault).
void machine::free_pgtables(mm_struct& mm, vaddr_t start, vaddr_t end) {
  std::uint64_t floor = 0, ceiling = ~std::uint64_t{0};
  auto next = mm.mm_mt.lower_bound(start.value);
  if (next != mm.mm_mt.end()) ceiling = next->second->vm_start.value;
  if (next != mm.mm_mt.begin()) floor = std::prev(next)->second->vm_end.value;
  for (std::uint64_t c = start.value & ~(PMD_SIZE - 1); c < end.value; c += PMD_SIZE)
    if (c >= floor && c + PMD_SIZE <= ceiling) mm.pgd.free_empty(vaddr_t{c}, vaddr_t{c + PMD_SIZE});
}

}  // namespace rmapkit::mm
