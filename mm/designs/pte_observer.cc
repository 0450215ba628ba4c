// How the PTE-tracking designs (pte_chain.cc, legoos.cc) hear of mappings: the machine
// observes every write to the page tables (pgtable.h's pte_observer; only under a design
// that asks for it, wants_pte_events()) and tells the design when a PTE starts or stops
// mapping an anonymous page.
//
// 2.5 did it the other way: each path that installed or cleared a PTE called
// page_add_rmap() or page_remove_rmap() itself, and a path that forgot left a chain that
// no longer matched the page tables. The model has many such paths (faults, fork's copy,
// zap, mremap, KSM merging, migration, reclaim, swap-in), and every new one would have
// to remember the call. An observer on the one function that writes PTEs
// cannot miss a write, so the chains always match the page tables; the designs' check()
// holds them to it, and the upkeep they count is the same as if each path had called.
#include "support.h"

namespace rmapkit::mm {

namespace {

/// The page @p maps when its folio is anonymous (KSM included), else 0: not present, the
/// zero page (@zero) and page-cache pages are not anonymous. A large folio's tail is its
/// own frame; its folio is what is anonymous.
pfn_t anon_page_of(const machine& m, pte_t p, pfn_t zero) {
  if (!p.present() || p.pfn() == zero || !m.page_folio(p.pfn()).is_anon()) return pfn_t{0};
  return p.pfn();
}

}  // namespace

// A PTE mapping an anonymous folio appeared or went: the design hears of it, with the page's
// own frame.
void machine::pte_set(mm_struct& mm, vaddr_t addr, pte_t old, pte_t now) {
  // A migration entry keeps its place in the old frame's rmap until migration moves it.
  if (old.is_migration() || now.is_migration()) return;
  const pfn_t o = anon_page_of(*this, old, _zero_pfn), n = anon_page_of(*this, now, _zero_pfn);
  if (o != n) _anon->pte_changed(mm, addr, o, n);
}

// A PMD mapping an anonymous large folio appeared or went: the design hears of it as of a
// PTE of the folio's head page, at the PMD's address (one entry for the 512 pages).
void machine::pmd_set(mm_struct& mm, vaddr_t addr, pte_t old, pte_t now) {
  const pfn_t o = anon_page_of(*this, old, HUGE_ZERO_PFN), n = anon_page_of(*this, now, HUGE_ZERO_PFN);
  if (o != n) _anon->pte_changed(mm, addr, o, n);
}

}  // namespace rmapkit::mm
