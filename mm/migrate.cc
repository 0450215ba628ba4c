// Kernel: mm/migrate.c (migrate_folio_unmap(), move_to_new_folio(), remove_migration_ptes())
// and try_to_migrate() from mm/rmap.c. Migration ignores mlock. The old folio's PTEs
// become migration entries; the new folio takes over mapping and index, so the same rmap
// walk (anon_vma, i_mmap or KSM stable node) finds every VMA again.
#include <vector>

#include "rmapkit/mm/machine.h"

namespace rmapkit::mm {

// Kernel: remove_migration_ptes(): a walk of @dst restores every entry that names @src.
void machine::restore_migration_ptes(folio& src, folio& dst) {
  const pfn_t old = src.pfn;
  rmap_walk_control restore;
  restore.rmap_one = [&](folio& fo, vm_area_struct& vma, vaddr_t addr) {
    pte_t pte = vma.vm_mm->pgd.get(addr);
    if (!pte.is_migration() || pte.pfn() != old) return true;
    folio_get(fo);
    fo.mapcount++;
    if (fo.is_anon() && !fo.is_ksm() && (pte.write() || pte.swp_exclusive())) fo.set(folio_flag::anon_exclusive);
    pte_t npte = pte_t::mk_present(fo.pfn, pte.write());
    if (pte.young()) npte = npte.mkyoung();
    if (pte.dirty()) npte = npte.mkdirty();
    vma.vm_mm->pgd.set(addr, npte);
    return true;
  };
  rmap_walk(dst, restore);
}

std::optional<pfn_t> machine::migrate_folio(pfn_t pfn) {
  folio& src = folio_of(pfn);
  // An unmapped folio's anon_vma may be gone (folio_get_anon_vma() refuses it too).
  if (!src.in_use() || pfn == _zero_pfn || !src.mapped()) return std::nullopt;

  // try_to_migrate(): every mapping becomes a migration entry naming src.
  rmap_walk_control rwc;
  rwc.rmap_one = [&](folio& fo, vm_area_struct& vma, vaddr_t addr) {
    if (!page_vma_mapped(fo, vma, addr)) return true;
    pte_t pte = vma.vm_mm->pgd.get(addr);
    // A writable entry stays writable; an exclusive anon page that was read-only leaves a
    // readable-exclusive entry, so AnonExclusive survives the move.
    bool exclusive = fo.is_anon() && fo.test(folio_flag::anon_exclusive);
    vma.vm_mm->pgd.set(addr, pte_t::mk_migration(fo.pfn, pte.write(), exclusive, pte.young(), pte.dirty()));
    folio_remove_rmap_pte(fo);
    folio_put(fo);
    return true;
  };
  rwc.done = [](folio& fo) { return !fo.mapped(); };
  folio_get(src);  // migration's own reference, as the anon_vma pin keeps the walk valid
  rmap_walk(src, rwc);
  if (src.mapped()) {
    // A mapping the walk cannot reach (a KSM page inherited by a child whose ancestor's
    // rmap_item is gone): migration fails and the entries go back to src.
    restore_migration_ptes(src, src);
    folio_put(src);
    count(vm_event::pgmigrate_fail);
    return std::nullopt;
  }

  // move_to_new_folio(): the data, the flags, mapping and index; the caches point at dst.
  // migrate_folio_unmap() isolated src from the LRU; dst takes its place there.
  if (src.test(folio_flag::lru)) lruvec_del_folio(src);
  folio& dst = alloc_folio();  // its reference is migration's
  dst.content = src.content;
  dst.mapping = src.mapping;
  dst.index = src.index;
  dst.flags = src.flags;
  dst.clear(folio_flag::anon_exclusive);
  dst.mlock_count = src.mlock_count;  // every locked mapping moves with the rest
  dst.swap = src.swap;
  if (address_space* as = src.file(); as && as->i_pages.count(src.index.value)) {
    as->i_pages[src.index.value] = dst.pfn;
    folio_get(dst);
    folio_put(src);
  }
  if (src.test(folio_flag::swapcache)) {
    swap_cache_replace_folio(src.swap, dst);
    folio_get(dst);
    src.clear(folio_flag::swapcache);
    folio_put(src);
  }
  if (src.is_ksm()) src.ksm_node()->kpfn = dst.pfn;

  _anon->migrate(src, dst);
  restore_migration_ptes(src, dst);
  lruvec_add_folio(dst);  // putback
  src.mapping = nullptr;
  folio_put(src);  // migration's reference: src is free now
  folio_put(dst);
  count(vm_event::pgmigrate_success);
  return dst.pfn;
}

void machine::migrate_all() {
  std::vector<pfn_t> mapped;
  for (std::size_t pfn = 2; pfn < _frames.size(); ++pfn)
    if (_frames[pfn].in_use() && _frames[pfn].mapped()) mapped.push_back(pfn_t{pfn});
  for (pfn_t pfn : mapped) migrate_folio(pfn);
}

}  // namespace rmapkit::mm
