// Kernel: mm/huge_memory.c and the large-folio parts of mm/memory.c and include/linux/rmap.h
// (v6.18): which order an anonymous fault allocates, the per-mm accounting of a large
// folio's mappings (CONFIG_MM_ID), COW reuse of a PTE-mapped large folio, and the
// deferred-split queue and the split that empties it. The model maps large folios by PTEs
// only; PMD mappings and khugepaged's collapse are not modelled yet.
#include <cstddef>
#include <stdexcept>
#include <utility>
#include <vector>

#include "rmapkit/mm/content.h"
#include "rmapkit/mm/machine.h"

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
// tried only where the whole naturally aligned block of virtual pages is inside the VMA,
// its page offsets are aligned alike (an anon VMA moved by mremap keeps its vm_pgoff), and
// no PTE of the block is in use, the zero page's included. PMD-sized folios need a PMD
// mapping, which the model does not have: it never picks order 9.
unsigned machine::anon_fault_order(const vm_area_struct& vma, vaddr_t addr) const {
  if (!vma.is_anonymous() || !vma.vm_flags.has(vm_flag::hugepage) || vma.vm_flags.has(vm_flag::nohugepage)) return 0;
  const auto& pgd = vma.vm_mm->pgd;
  for (unsigned order = PMD_ORDER - 1; order > 0; --order) {
    if ((_thp_anon_orders & (1U << order)) == 0) continue;
    const std::uint64_t nr = std::uint64_t{1} << order;
    const vaddr_t start{addr.value & ~(nr * PAGE_SIZE - 1)};
    if (start < vma.vm_start || page_addr(start, nr) > vma.vm_end) continue;
    if ((pages_between(vaddr_t{0}, vma.vm_start) - vma.vm_pgoff.value) % nr != 0) continue;
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
// mlocking parent); an mlocked large folio keeps every page. Returns, per page, its
// mappings in VM_LOCKED VMAs.
std::vector<unsigned> machine::split_remap(folio& head) {
  const std::uint64_t nr = head.nr_pages(), first = head.pfn.value;
  std::vector<unsigned> locked(nr, 0);
  const bool was_mlocked = head.test(folio_flag::mlocked);
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
      } else if (page.content == content::filled(0) && !was_mlocked && locked[i] == 0) {
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

// split_folio() to order 0 of an anonymous folio whose every reference is a mapping (any
// other holder makes the kernel's split fail, and the folio stays queued). Pages keep
// their frames and their PTEs: each mapped page becomes a folio with the head's mapping,
// its own index, its own AnonExclusive bit and the head's other flags, on the LRU; one
// that a VM_LOCKED VMA maps is mlocked, one mapped nowhere freed.
bool machine::split_large_folio(folio& head) {
  if (head.refcount != large_state(head).mapcount) return false;
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
    page.order = 0;
    if (page.mapcount == 0) {
      free_frame(page);
      continue;
    }
    page.mapping = mapping;
    page.index = pgoff_t{index.value + i};
    page.refcount = page.mapcount;
    page.flags = static_cast<std::uint16_t>((page.flags & per_page) | folio_wide);
    page.mlock_count = static_cast<std::uint16_t>(locked[i]);
    if (locked[i] > 0) {
      page.set(folio_flag::mlocked);
      page.set(folio_flag::unevictable);
      page.clear(folio_flag::active);
    }
    lruvec_add_folio(page);
  }
  return true;
}

std::uint64_t machine::deferred_split_scan() {
  std::uint64_t split = 0;
  for (const pfn_t pfn : std::vector<pfn_t>(_deferred_split)) split += split_large_folio(folio_of(pfn)) ? 1U : 0U;
  return split;
}

}  // namespace rmapkit::mm
