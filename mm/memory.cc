// Kernel: mm/memory.c (v6.18): page faults (anonymous, zero page, read with fault-around,
// COW, shared, write-protect with reuse, swap-in), zap, copy_page_range at fork. Every new
// mapping takes a folio reference; every unmap puts one.
#include <algorithm>
#include <cerrno>

#include "internal.h"

namespace rmapkit::mm {

int machine::access(mm_struct& mm, vaddr_t addr, bool write, std::uint64_t content) {
  vm_area_struct* vma = find_vma(mm, addr);
  if (!vma) return -EFAULT;
  if (!vma->vm_flags.has(write ? vm_flag::write : vm_flag::read)) return -EFAULT;
  pte_t pte = mm.pgd.get(addr);
  bool ok = write ? pte.present() && pte.write() : pte.present();
  if (!ok) {
    if (int r = handle_mm_fault(*vma, addr, write)) return r;
    pte = mm.pgd.get(addr);
  }
  if (touch_huge_pmd(mm, addr, write)) {
    if (write) folio_of(pte.pfn()).content = content;
    return 0;
  }
  pte = pte.mkyoung();
  if (write) {
    pte = pte.mkdirty();
    folio_of(pte.pfn()).content = content;
  }
  mm.pgd.set(addr, pte);
  return 0;
}

int machine::handle_mm_fault(vm_area_struct& vma, vaddr_t addr, bool write) {
  count(vm_event::pgfault);
  if (auto pmd = vma.vm_mm->pgd.huge_pmd(addr)) {
    if (!write || pmd->write()) {
      touch_huge_pmd(*vma.vm_mm, addr, false);  // huge_pmd_set_accessed()
      return 0;
    }
    if (vma.is_anonymous()) return do_huge_pmd_wp_page(vma, addr, *pmd);
    // wp_huge_pmd(): shmem has no huge_fault handler, so the PMD goes and the write is
    // handled by PTEs (which may map the folio by PMD again: do_set_pmd()).
    split_huge_pmd(vma, addr);
  }
  pte_t pte = vma.vm_mm->pgd.get(addr);
  if (pte.none()) {
    if (vma.is_anonymous()) {
      if (pmd_fault_suitable(vma, addr)) return do_huge_pmd_anonymous_page(vma, addr, write);
      return do_anonymous_page(vma, addr, write);
    }
    // A mapping may reach past the file's end (mremap grows it, a file shrinks), but a page
    // there is no page: the fault is SIGBUS.
    if (linear_page_index(vma, addr).value >= vma.vm_file->size_pages) return -EFAULT;
    if (!write) return do_read_fault(vma, addr);
    return vma.vm_flags.has(vm_flag::shared) ? do_shared_fault(vma, addr) : do_cow_fault(vma, addr);
  }
  if (pte.is_swap()) return do_swap_page(vma, addr, pte, write);
  if (write && !pte.write()) {
    if (vma.vm_flags.has(vm_flag::shared)) {
      // wp_page_shared(): the page cache page itself becomes writable.
      vma.vm_mm->pgd.set(addr, pte.mkwrite().mkdirty().mkyoung());
      folio_of(pte.pfn()).set(folio_flag::dirty);
      return 0;
    }
    return do_wp_page(vma, addr, pte);
  }
  vma.vm_mm->pgd.set(addr, pte.mkyoung());
  return 0;
}

// A read maps the shared zero page; a write allocates a fresh, exclusive folio, large
// where the VMA asks for it and a size fits (anon_fault_order()).
int machine::do_anonymous_page(vm_area_struct& vma, vaddr_t addr, bool write) {
  if (!write) {
    vma.vm_mm->pgd.set(addr, pte_t::mk_present(_zero_pfn, false).mkyoung());
    return 0;
  }
  map_new_anon_folio(vma, addr, 0, false, anon_fault_order(vma, addr));
  return 0;
}

// The tail of every fault that installs a new anonymous page (the kernel's
// folio_add_new_anon_rmap(), folio_add_lru_vma() and set_pte_at()): an exclusive page with
// @content, mapped writable, dirty and young. Its reference is the mapping's. The caller
// may have prepared the anon_vma already (do_cow_fault(), before it reads the file). An
// @unshare copy (FAULT_FLAG_UNSHARE: KSM breaking a merged page) is made for no write: it
// is mapped read-only and clean, and a later write reuses it, being exclusive.
// A large folio is zero-filled and mapped whole, each PTE holding a reference (the kernel's
// folio_ref_add() of the pages beyond the first).
void machine::map_new_anon_folio(vm_area_struct& vma, vaddr_t addr, std::uint64_t content, bool unshare,
                                 unsigned order) {
  anon_vma_prepare(vma);
  folio& f = alloc_folio(order);
  const std::uint64_t nr = f.nr_pages();
  const vaddr_t start{addr.value & ~(nr * PAGE_SIZE - 1)};
  f.content = content;
  folio_add_new_anon_rmap(f, vma, start, true);
  folio_add_lru(f, &vma);
  f.refcount += static_cast<int>(nr - 1);
  for (std::uint64_t i = 0; i < nr; ++i) {
    const pte_t pte = pte_t::mk_present(pfn_t{f.pfn.value + i}, !unshare).mkyoung();
    vma.vm_mm->pgd.set(page_addr(start, i), unshare ? pte : pte.mkdirty());
  }
}

// set_pte_range() for @nr pages of one folio from @page on, at @addr on: a reference and a
// mapping each (folio_add_file_rmap_ptes()). Only a write fault maps the pages dirty. A read
// fault in a shared writable mapping maps them writable but clean (shmem needs no write
// notification); the first write through one sets its dirty bit, as the MMU does. A
// VM_LOCKED VMA mlocks the folio when this one batch maps all of it (6.18: a mapping of part
// of a large folio leaves it to reclaim).
void machine::map_file_ptes(vm_area_struct& vma, vaddr_t addr, folio& page, unsigned nr, bool writable, bool dirty) {
  folio& head = page_folio(page.pfn);
  for (unsigned i = 0; i < nr; ++i) {
    folio& p = _frames[page.pfn.value + i];
    folio_get(head);
    if (head.is_large()) p.mapcount++;
    else folio_add_file_rmap_pte(p);
    const auto pte = pte_t::mk_present(p.pfn, writable).mkyoung();
    vma.vm_mm->pgd.set(page_addr(addr, i), dirty ? pte.mkdirty() : pte);
  }
  if (head.is_large()) large_mapcount_add(head, *vma.vm_mm, static_cast<int>(nr));
  if (nr == head.nr_pages()) mlock_vma_folio(head, vma);
}

/// Shared writable shmem needs no write notification, so its PTEs are mapped writable;
/// private mappings map the page cache read-only (COW on write).
static bool maps_writable(const vm_area_struct& vma) {
  return vma.vm_flags.has(vm_flag::shared) && vma.vm_flags.has(vm_flag::write);
}

// Kernel: do_fault_around() + filemap_map_pages(). The window is 16 PTEs: from the later
// of the 16-aligned PTE and the VMA start, 16 pages on, cut at the VMA end and at the end
// of the page table. Only pages already in the page cache and not yet mapped are mapped.
// Where no table is there yet and the first folio in the window is PMD-sized, a PMD maps
// it if the VMA can take one (filemap_map_pmd()). A large folio the window meets is mapped
// whole when it lies inside the VMA and one page table (filemap_map_folio_range(): seen on
// 6.18, a 128 KiB shmem folio mapped whole by a read of its first page), else the part of
// it inside the window.
void machine::do_fault_around(vm_area_struct& vma, vaddr_t addr) {
  const std::uint64_t nr = FAULT_AROUND_PAGES;
  const std::uint64_t pte_off = (addr.value >> PAGE_SHIFT) & (PTRS_PER_TABLE - 1);
  const std::uint64_t vma_off = pages_between(vma.vm_start, addr);
  const std::uint64_t from = std::max(pte_off & ~(nr - 1), pte_off - std::min(pte_off, vma_off));
  const std::uint64_t to = std::min({from + nr, std::uint64_t{PTRS_PER_TABLE}, pte_off + vma.pages() - vma_off});
  auto at = [&](std::uint64_t i) { return vaddr_t{addr.value - (pte_off - i) * PAGE_SIZE}; };
  for (std::uint64_t i = from; i < to; ++i) {
    if (folio* first = filemap_get_folio(*vma.vm_file, linear_page_index(vma, at(i)), false)) {
      folio& head = page_folio(first->pfn);
      if (head.order == PMD_ORDER && do_set_pmd(vma, at(i), head, false)) return;
      break;
    }
  }
  for (std::uint64_t i = from; i < to;) {
    folio* page = filemap_get_folio(*vma.vm_file, linear_page_index(vma, at(i)), false);
    if (!page) {
      ++i;
      continue;
    }
    folio& head = page_folio(page->pfn);
    const std::uint64_t sub = page->pfn.value - head.pfn.value, in_window = std::min(head.nr_pages() - sub, to - i);
    const vaddr_t start{at(i).value - sub * PAGE_SIZE};
    const vaddr_t last = page_addr(start, head.nr_pages() - 1);
    if (head.is_large() && start >= vma.vm_start && last < vma.vm_end &&
        (start.value & ~(PMD_SIZE - 1)) == (last.value & ~(PMD_SIZE - 1)))
      map_unmapped_pages(vma, start, head, 0, head.nr_pages());
    else map_unmapped_pages(vma, start, head, sub, sub + in_window);
    i += in_window;
  }
}

// Pages [@first, @last) of folio @head, the folio's first page at @start: those whose PTE
// is empty are mapped, each run of them as one batch.
void machine::map_unmapped_pages(vm_area_struct& vma, vaddr_t start, folio& head, std::uint64_t first,
                                 std::uint64_t last) {
  auto& pgd = vma.vm_mm->pgd;
  for (std::uint64_t j = first; j < last;) {
    if (!pgd.get(page_addr(start, j)).none()) {
      ++j;
      continue;
    }
    std::uint64_t run = 1;
    while (j + run < last && pgd.get(page_addr(start, j + run)).none()) ++run;
    map_file_ptes(vma, page_addr(start, j), _frames[head.pfn.value + j], static_cast<unsigned>(run), maps_writable(vma),
                  false);
    j += run;
  }
}

// Kernel: do_set_pmd(). A PMD-sized page-cache folio is mapped by one PMD where the PMD is
// empty (no table) and the VMA holds the whole aligned block at the file's alignment.
bool machine::do_set_pmd(vm_area_struct& vma, vaddr_t addr, folio& head, bool write) {
  auto& pgd = vma.vm_mm->pgd;
  const vaddr_t h{addr.value & ~(PMD_SIZE - 1)};
  if (head.order != PMD_ORDER || vma.vm_flags.has(vm_flag::nohugepage)) return false;
  if (!thp_vma_suitable_order(vma, addr, PMD_ORDER) || pgd.has_pte_table(h) || pgd.huge_pmd(h)) return false;
  if (linear_page_index(vma, h) != head.index) return false;
  folio_get(head);
  mutable_large_state(head).entire_mapcount++;
  large_mapcount_add(head, *vma.vm_mm, 1);
  auto pmd = pte_t::mk_present(head.pfn, maps_writable(vma)).mkyoung();
  pgd.set_huge_pmd(h, write ? pmd.mkdirty() : pmd);
  mlock_vma_folio(head, vma);  // a PMD maps all of it
  return true;
}

// Kernel: finish_fault() for a page-cache page. A PMD-sized folio goes in by PMD where it
// can; otherwise a shmem folio is mapped whole by PTEs when it lies inside the VMA and one
// page table at the file's alignment and none of its PTEs is in use, else only the page.
int machine::finish_fault(vm_area_struct& vma, vaddr_t addr, folio& page, bool write) {
  folio& head = page_folio(page.pfn);
  const bool writable = write || maps_writable(vma);
  if (do_set_pmd(vma, addr, head, write)) return 0;
  const std::uint64_t nr = head.nr_pages();
  if (nr > 1) {
    const std::uint64_t idx = page.pfn.value - head.pfn.value;
    const vaddr_t start{addr.value - idx * PAGE_SIZE};
    // The aligned block inside the VMA at the file's alignment: then it is also inside
    // one page table, and its pages are the folio's.
    bool whole = thp_vma_suitable_order(vma, addr, head.order);
    for (std::uint64_t i = 0; whole && i < nr; ++i) whole = vma.vm_mm->pgd.get(page_addr(start, i)).none();
    if (whole) {
      map_file_ptes(vma, start, head, static_cast<unsigned>(nr), writable, write);
      return 0;
    }
  }
  map_file_ptes(vma, addr, page, 1, writable, write);
  return 0;
}

int machine::do_read_fault(vm_area_struct& vma, vaddr_t addr) {
  do_fault_around(vma, addr);
  if (!vma.vm_mm->pgd.get(addr).none() || vma.vm_mm->pgd.huge_pmd(addr)) return 0;
  // Not in the page cache: a shmem hole gets a new folio; a swapped shmem page comes back.
  folio* f = shmem_get_folio(*vma.vm_file, linear_page_index(vma, addr), &vma, addr);
  return finish_fault(vma, addr, *f, false);
}

// A write to a private file mapping copies the page-cache page into a new anon page.
int machine::do_cow_fault(vm_area_struct& vma, vaddr_t addr) {
  anon_vma_prepare(vma);  // vmf_anon_prepare() comes before the file is read
  folio* src = shmem_get_folio(*vma.vm_file, linear_page_index(vma, addr), &vma, addr);
  map_new_anon_folio(vma, addr, src->content);
  return 0;
}

int machine::do_shared_fault(vm_area_struct& vma, vaddr_t addr) {
  folio* f = shmem_get_folio(*vma.vm_file, linear_page_index(vma, addr), &vma, addr);
  page_folio(f->pfn).set(folio_flag::dirty);
  return finish_fault(vma, addr, *f, true);
}

// Kernel: wp_can_reuse_anon_folio(): reuse only what nothing else holds: mapped once, and
// in the swap cache only if the slot can be freed (no other PTE or shmem holds it).
bool machine::can_reuse_anon_folio(folio& f) {
  if (f.is_ksm()) return false;
  int swapcache = f.test(folio_flag::swapcache) ? 1 : 0;
  if (f.refcount > 1 + swapcache) return false;
  if (swapcache) folio_free_swap(f);
  return f.refcount == 1;
}

// A page of a large folio is reused when it is exclusive, or when the whole folio is the
// faulting mm's alone; only that page then becomes exclusive (and writable). A reused large
// folio keeps its anon_vma: it may span VMAs of other anon_vmas (a VMA split inside it), and
// the kernel moves only an order-0 folio to the faulting VMA's own.
int machine::do_wp_page(vm_area_struct& vma, vaddr_t addr, pte_t pte) {
  if (pte.pfn() == _zero_pfn) return wp_page_copy(vma, addr, nullptr);
  folio& page = folio_of(pte.pfn());
  folio& f = page_folio(pte.pfn());
  if (f.is_anon()) {
    bool reuse = !f.is_ksm() && page.test(folio_flag::anon_exclusive);
    if (!reuse && (f.is_large() ? can_reuse_large_anon_folio(f, vma) : can_reuse_anon_folio(f))) {
      if (!f.is_large()) folio_move_anon_rmap(f, vma);
      page.set(folio_flag::anon_exclusive);
      reuse = true;
    }
    if (reuse) {
      vma.vm_mm->pgd.set(addr, pte.mkwrite().mkdirty().mkyoung());
      return 0;
    }
  }
  return wp_page_copy(vma, addr, &page);
}

// The faulting process gets its own copy, always one page; the old page loses this
// mapping, and with it its folio a reference.
int machine::wp_page_copy(vm_area_struct& vma, vaddr_t addr, folio* old, bool unshare) {
  if (old && old->is_ksm()) count(vm_event::cow_ksm);
  map_new_anon_folio(vma, addr, old ? old->content : 0, unshare);
  if (old) {
    folio& f = page_folio(old->pfn);
    folio_remove_rmap_ptes(f, *old, 1, vma);
    munlock_vma_folio(f, vma);
    // free_swap_cache(): the copy was the old folio's last mapping and no swap entry needs
    // it, so its swap cache goes now, not at the next reclaim. Only a KSM folio can get here
    // that way (any other would have been reused), and its stable node then goes stale.
    if (!folio_mapped(f)) folio_free_swap(f);
    folio_put(f);
  }
  return 0;
}

// The PTEs of a large folio that follow each other, page after page, go as one batch
// (zap_present_folio_ptes()): whether the folio is now partially mapped is judged after all
// of them, so a folio unmapped whole is never queued for a split.
void machine::zap_pte_range(vm_area_struct& vma, vaddr_t start, vaddr_t end) {
  zap_huge_pmds(vma, start, end);
  auto& pgd = vma.vm_mm->pgd;
  folio* batch_head = nullptr;
  folio* batch_first = nullptr;
  unsigned batch_nr = 0;
  vaddr_t batch_next{};
  bool batch_dirty = false, batch_young = false;
  auto flush = [&] {
    if (!batch_head) return;
    if (!batch_head->is_anon()) {  // a page-cache folio takes the batch's bits along, as below
      if (batch_dirty) batch_head->set(folio_flag::dirty);
      if (batch_young && vma.has_recency()) folio_mark_accessed(*batch_head);
    }
    folio_remove_rmap_ptes(*batch_head, *batch_first, batch_nr, vma);
    munlock_vma_folio(*batch_head, vma);
    folio_put_refs(*batch_head, static_cast<int>(batch_nr));
    batch_head = nullptr;
  };
  pgd.for_each(start, end, [&](vaddr_t a, pte_t pte) {
    pgd.set(a, pte_t{});
    if (pte.is_swap()) {
      flush();
      free_swap_and_cache(pte.swap_entry());
      return;
    }
    if (pte.pfn() == _zero_pfn) {
      flush();
      return;
    }
    folio& page = folio_of(pte.pfn());
    if (page.is_large()) {
      folio& head = page_folio(pte.pfn());
      if (batch_head == &head && a == batch_next && page.pfn.value == batch_first->pfn.value + batch_nr) {
        ++batch_nr;
      } else {
        flush();
        batch_head = &head;
        batch_first = &page;
        batch_nr = 1;
        batch_dirty = batch_young = false;
      }
      batch_dirty |= pte.dirty();
      batch_young |= pte.young();
      batch_next = page_addr(a, 1);
      return;
    }
    flush();
    folio& f = page;
    // Only a page-cache page takes the dirty bit along (zap_present_folio_ptes()): an
    // anonymous page is dirtied when it gets a swap slot.
    if (!f.is_anon() && pte.dirty()) f.set(folio_flag::dirty);
    // A page-cache page keeps the use its mapping made of it: a young PTE going away
    // counts as an access (zap_present_folio_ptes()), which activates a referenced page.
    if (!f.is_anon() && pte.young() && vma.has_recency()) folio_mark_accessed(f);
    folio_remove_rmap_pte(f);
    munlock_vma_folio(f, vma);
    // free_swap_cache(): an unmapped folio nobody else's swap entry needs leaves the cache.
    if (!f.mapped()) folio_free_swap(f);
    folio_put(f);
  });
  flush();
}

// Kernel: copy_pte_range() and friends. Shared anon pages lose AnonExclusive and both
// sides are write-protected (COW); swap entries are duplicated, and the parent's loses
// its exclusive marker too.
void machine::copy_page_range(vm_area_struct& dst, vm_area_struct& src) {
  const bool cow = !src.vm_flags.has(vm_flag::shared) && src.vm_flags.has(vm_flag::maywrite);
  copy_huge_pmds(dst, src);
  auto& spgd = src.vm_mm->pgd;
  auto& dpgd = dst.vm_mm->pgd;
  // The PTEs of one large folio that follow each other are one batch, as
  // folio_try_dup_anon_rmap_ptes() takes them: its references and its mm slot are counted once.
  folio* batch = nullptr;
  int batch_nr = 0;
  auto flush = [&] {
    if (!batch) return;
    batch->refcount += batch_nr;
    large_mapcount_add(*batch, *dst.vm_mm, batch_nr);
    batch = nullptr;
    batch_nr = 0;
  };
  spgd.for_each(src.vm_start, src.vm_end, [&](vaddr_t a, pte_t pte) {
    if (pte.is_swap()) {
      swap_duplicate(pte.swap_entry());
      pte = pte.swp_clear_exclusive();
      spgd.set(a, pte);
      dpgd.set(a, pte);
      return;
    }
    if (pte.pfn() != _zero_pfn) {
      folio& page = folio_of(pte.pfn());
      if (page.is_large()) {
        folio& head = folio_of(page.head_pfn());
        if (&head != batch) flush();
        batch = &head;
        ++batch_nr;
        page.mapcount++;
        page.clear(folio_flag::anon_exclusive);
      } else {
        folio_get(page);
        folio_dup_rmap_pte(page);
      }
    }
    if (cow && pte.write()) {
      pte = pte.wrprotect();
      spgd.set(a, pte);
    }
    dpgd.set(a, pte.mkold());
  });
  flush();
}

// Kernel: do_swap_page(). The faulting process alone maps the swap-cache folio; other
// holders of the entry keep it until they fault. The page is exclusive when the entry
// carried the exclusive marker, or when nothing else holds it any more.
int machine::do_swap_page(vm_area_struct& vma, vaddr_t addr, pte_t pte, bool write) {
  const swp_entry_t entry = pte.swap_entry();
  folio* cached = swap_cache_get_folio(entry);
  if (!cached) count(vm_event::pgmajfault);  // the page must be read back
  folio& f = cached ? *cached : swapin(entry);
  const bool ksm = f.is_ksm();
  bool exclusive = !ksm && pte.swp_exclusive();
  folio_get(f);  // the fault's reference becomes the mapping's
  swap_free(entry);
  // should_try_to_free_swap(): a write by what would be the only user frees the slot.
  if (f.test(folio_flag::swapcache) && (vma.vm_flags.has(vm_flag::locked) || (write && !ksm && f.refcount == 2)))
    folio_free_swap(f);
  if (!ksm && (exclusive || f.refcount == 1)) exclusive = true;
  const bool writable = exclusive && vma.vm_flags.has(vm_flag::write);
  if (!f.is_anon()) folio_add_new_anon_rmap(f, vma, addr, exclusive);
  else folio_add_anon_rmap_pte(f, vma, addr, exclusive);
  pte_t npte = pte_t::mk_present(f.pfn, writable).mkyoung();
  if (write && writable) npte = npte.mkdirty();
  vma.vm_mm->pgd.set(addr, npte);
  mlock_vma_folio(f, vma);
  if (write && !writable) return do_wp_page(vma, addr, npte);
  return 0;
}

}  // namespace rmapkit::mm
