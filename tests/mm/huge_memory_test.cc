// Anonymous large folios mapped by PTEs (mTHP) and by PMDs: which order a fault allocates,
// the two mm slots that decide COW reuse, partial unmapping and the deferred split, the PMD's
// fork, COW, reuse, zap and split, and the PTE tables that decide PMD or PTE faults, on
// hand-built states. The kernel's answers for the same situations are the version 2 corpus
// (tests/scenarios/v2/); these tests pin the model's state behind them.
#include <cerrno>

#include <gtest/gtest.h>

#include "rmapkit/mm/machine.h"
#include "support/mm_fixture.h"

namespace rmapkit::mm {
namespace {

using testing::A;

constexpr std::uint16_t order_bit(unsigned order) { return static_cast<std::uint16_t>(1U << order); }

class LargeFolio : public testing::machine_test {
 protected:
  /// P with a private anonymous region of @pages at A, VM_HUGEPAGE when @huge.
  mm_struct* process_with_region(std::uint64_t pages, bool huge = true) {
    auto* p = m.mm_alloc("P");
    EXPECT_EQ(m.do_mmap(*p, A, pages, PROT_READ_ | PROT_WRITE_, false, nullptr, pgoff_t{}), 0);
    if (huge) {
      EXPECT_EQ(m.do_madvise(*p, A, pages, madv::hugepage), 0);
    }
    return p;
  }
  /// P with one 64k folio at A, written at page 0 (order 4 the only size enabled).
  mm_struct* process_with_64k_folio() {
    m.set_thp_anon_orders(order_bit(4));
    auto* p = process_with_region(16);
    EXPECT_EQ(m.access(*p, A, true, 1), 0);
    EXPECT_EQ(folio_at(*p, 0).order, 4U);
    return p;
  }
  folio& page_at(mm_struct& mm, std::uint64_t i) { return m.folio_of(mm.pgd.get(page_addr(A, i)).pfn()); }
  folio& folio_at(mm_struct& mm, std::uint64_t i) { return m.page_folio(mm.pgd.get(page_addr(A, i)).pfn()); }
};

TEST_F(LargeFolio, AWriteFaultTakesTheLargestEnabledOrderWhoseAlignedBlockFits) {
  m.set_thp_anon_orders(order_bit(2) | order_bit(4));
  auto* p = process_with_region(24);
  ASSERT_EQ(m.access(*p, page_addr(A, 5), true, 7), 0);
  folio& f = folio_at(*p, 5);
  EXPECT_EQ(f.order, 4U) << "pages 0-15 are inside the VMA and empty";
  for (std::uint64_t i = 0; i < 16; ++i) {
    EXPECT_EQ(page_at(*p, i).pfn.value, f.pfn.value + i) << "page " << i;
    EXPECT_EQ(page_at(*p, i).mapcount, 1);
    EXPECT_TRUE(page_at(*p, i).test(folio_flag::anon_exclusive));
  }
  EXPECT_EQ(f.pfn.value % 16, 0U) << "naturally aligned";
  EXPECT_EQ(f.refcount, 16) << "one reference per mapping";
  EXPECT_EQ(page_at(*p, 5).content, 7U);
  EXPECT_EQ(page_at(*p, 4).content, 0U) << "the rest is zero-filled";
  const auto& st = m.large_state(f);
  EXPECT_EQ(st.mapcount, 16);
  EXPECT_EQ(st.mm_id[0], p->id);
  EXPECT_EQ(st.mm_mapcount[0], 16);
  EXPECT_FALSE(st.maybe_shared);
  // Pages 16-23: a 64k block would reach past the VMA's end; 16k blocks fit.
  ASSERT_EQ(m.access(*p, page_addr(A, 17), true, 8), 0);
  EXPECT_EQ(folio_at(*p, 17).order, 2U);
  EXPECT_EQ(folio_at(*p, 17).pfn, page_at(*p, 16).pfn);
}

TEST_F(LargeFolio, AZeroPagePteInTheBlockAndARegionNotHugeGetOrderZero) {
  m.set_thp_anon_orders(order_bit(4));
  auto* p = process_with_region(16);
  ASSERT_EQ(m.access(*p, page_addr(A, 1), false), 0);  // the zero page at 1
  ASSERT_EQ(m.access(*p, page_addr(A, 0), true, 1), 0);
  EXPECT_EQ(folio_at(*p, 0).order, 0U);
  auto* q = m.mm_alloc("Q");
  ASSERT_EQ(m.do_mmap(*q, A, 16, PROT_READ_ | PROT_WRITE_, false, nullptr, pgoff_t{}), 0);
  ASSERT_EQ(m.access(*q, page_addr(A, 0), true, 1), 0);
  EXPECT_EQ(folio_at(*q, 0).order, 0U) << "no VM_HUGEPAGE";
}

TEST_F(LargeFolio, ForkTakesTheSecondSlotAndTheSurvivorReusesOnceTheChildIsGone) {
  auto* p = process_with_64k_folio();
  folio& f = folio_at(*p, 0);
  auto* c = m.dup_mm(*p, "C");
  const auto& st = m.large_state(f);
  EXPECT_EQ(st.mapcount, 32);
  EXPECT_EQ(st.mm_id[1], c->id);
  EXPECT_EQ(st.mm_mapcount[1], 16);
  EXPECT_TRUE(st.maybe_shared);
  EXPECT_FALSE(page_at(*p, 3).test(folio_flag::anon_exclusive)) << "fork shares every page";
  m.exit_mm(c);
  EXPECT_FALSE(m.large_state(f).maybe_shared) << "slot 0 holds every mapping again";
  ASSERT_EQ(m.access(*p, page_addr(A, 3), true, 2), 0);
  EXPECT_EQ(&folio_at(*p, 3), &f) << "reused in place";
  EXPECT_TRUE(page_at(*p, 3).test(folio_flag::anon_exclusive));
  EXPECT_FALSE(page_at(*p, 4).test(folio_flag::anon_exclusive)) << "only the written page";
}

// R4: the two slots go to P and C1; C2 is not tracked. Once P and C1 are gone no slot
// holds C2's mappings, so the folio stays maybe shared and C2's write copies.
TEST_F(LargeFolio, AThirdMmIsNotTrackedAndCopiesOnceTheTrackedOnesAreGone) {
  auto* p = process_with_64k_folio();
  folio& f = folio_at(*p, 0);
  auto* c1 = m.dup_mm(*p, "C1");
  auto* c2 = m.dup_mm(*p, "C2");
  EXPECT_NE(m.large_state(f).mm_id[0], c2->id);
  EXPECT_NE(m.large_state(f).mm_id[1], c2->id);
  m.exit_mm(p);
  m.exit_mm(c1);
  EXPECT_EQ(m.large_state(f).mapcount, 16);
  EXPECT_TRUE(m.large_state(f).maybe_shared);
  EXPECT_EQ(f.refcount, 16) << "no other reference: only the untracked mapping decides";
  ASSERT_EQ(m.access(*c2, page_addr(A, 3), true, 2), 0);
  EXPECT_EQ(folio_at(*c2, 3).order, 0U) << "copied";
  EXPECT_EQ(&folio_at(*c2, 4), &f);
}

TEST_F(LargeFolio, AFolioMappedByOnePageIsCopiedFromNotReused) {
  auto* p = process_with_64k_folio();
  folio& f = folio_at(*p, 0);
  auto* c = m.dup_mm(*p, "C");
  ASSERT_EQ(m.do_madvise(*p, page_addr(A, 1), 15, madv::dontneed), 0);
  m.exit_mm(c);
  EXPECT_EQ(m.large_state(f).mapcount, 1);
  ASSERT_EQ(m.access(*p, A, true, 2), 0);
  EXPECT_EQ(folio_at(*p, 0).order, 0U) << "a copy, and the large folio freed";
  EXPECT_TRUE(m.deferred_split_queue().empty());
}

TEST_F(LargeFolio, APartialUnmapQueuesTheFolioAndTheScanSplitsItWithZeroFilledPagesOnTheZeroPage) {
  auto* p = process_with_64k_folio();
  folio& f = folio_at(*p, 0);
  ASSERT_EQ(m.do_madvise(*p, page_addr(A, 8), 8, madv::dontneed), 0);
  ASSERT_EQ(m.deferred_split_queue().size(), 1U);
  EXPECT_EQ(m.deferred_split_queue()[0], f.pfn);
  EXPECT_TRUE(m.large_state(f).partially_mapped);
  EXPECT_EQ(m.deferred_split_scan(), 1U);
  EXPECT_TRUE(m.deferred_split_queue().empty());
  EXPECT_EQ(page_at(*p, 0).order, 0U);
  EXPECT_EQ(page_at(*p, 0).refcount, 1);
  EXPECT_TRUE(page_at(*p, 0).test(folio_flag::lru));
  for (std::uint64_t i = 1; i < 8; ++i) EXPECT_EQ(p->pgd.get(page_addr(A, i)).pfn(), m.zero_pfn()) << i;
}

TEST_F(LargeFolio, UnmappingAWholeFolioInOneGoNeverQueuesIt) {
  auto* p = process_with_64k_folio();
  const auto frames = m.nr_frames();
  ASSERT_EQ(m.do_munmap(*p, A, 16), 0);
  EXPECT_TRUE(m.deferred_split_queue().empty());
  EXPECT_EQ(m.nr_frames(), frames);
}

TEST_F(LargeFolio, AVmaSplitInsideTheFolioLeavesItWholeAndItsWalkVisitsEveryPart) {
  auto* p = process_with_64k_folio();
  ASSERT_EQ(m.do_mprotect(*p, page_addr(A, 4), 8, PROT_READ_), 0);
  folio& f = folio_at(*p, 0);
  EXPECT_EQ(f.order, 4U);
  int visits = 0;
  rmap_walk_control rwc;
  rwc.rmap_one = [&](folio&, vm_area_struct&, vaddr_t) { return ++visits > 0; };
  m.rmap_walk(f, rwc);
  EXPECT_EQ(visits, 3) << "one visit per VMA the folio spans";
}

// MADV_PAGEOUT: a swap file takes no large folio, so a folio the caller alone maps is split
// first (its never-written pages to the zero page) and its pages swapped one by one; one a
// fork child shares is passed over (research fact 29).
TEST_F(LargeFolio, PageoutSplitsAnUnsharedFolioAndPassesOverASharedOne) {
  auto* p = process_with_64k_folio();
  ASSERT_EQ(m.do_madvise(*p, A, 16, madv::pageout), 0);
  EXPECT_TRUE(p->pgd.get(A).is_swap());
  for (std::uint64_t i = 1; i < 16; ++i) EXPECT_EQ(p->pgd.get(page_addr(A, i)).pfn(), m.zero_pfn()) << "page " << i;
  EXPECT_EQ(m.check_invariants(), "");
  auto* q = m.mm_alloc("Q");
  ASSERT_EQ(m.do_mmap(*q, page_addr(A, 1024), 16, PROT_READ_ | PROT_WRITE_, false, nullptr, pgoff_t{}), 0);
  ASSERT_EQ(m.do_madvise(*q, page_addr(A, 1024), 16, madv::hugepage), 0);
  ASSERT_EQ(m.access(*q, page_addr(A, 1024), true, 1), 0);
  auto* c = m.dup_mm(*q, "C");
  ASSERT_EQ(m.do_madvise(*q, page_addr(A, 1024), 16, madv::pageout), 0);
  EXPECT_TRUE(q->pgd.get(page_addr(A, 1024)).present()) << "maybe shared: left alone";
  EXPECT_EQ(m.page_folio(q->pgd.get(page_addr(A, 1024)).pfn()).order, 4U);
  EXPECT_EQ(m.check_invariants(), "");
  m.exit_mm(c);
}

// ---- PMD-mapped THP ---------------------------------------------------------------------

class PmdThp : public LargeFolio {
 protected:
  static constexpr std::uint64_t NR = HPAGE_PMD_NR;
  /// P with a 1024-page huge region at A whose first 2 MiB a write fault maps by PMD.
  mm_struct* process_with_pmd(std::uint16_t orders = order_bit(PMD_ORDER)) {
    m.set_thp_anon_orders(orders);
    auto* p = process_with_region(2 * NR);
    EXPECT_EQ(m.access(*p, page_addr(A, 3), true, 9), 0);
    EXPECT_TRUE(p->pgd.huge_pmd(A));
    return p;
  }
  folio& thp(mm_struct& mm) { return m.folio_of(mm.pgd.huge_pmd(A)->pfn()); }
};

TEST_F(PmdThp, AWriteFaultMapsOnePmdAndNoPteTable) {
  auto* p = process_with_pmd();
  folio& f = thp(*p);
  EXPECT_EQ(f.order, PMD_ORDER);
  EXPECT_FALSE(p->pgd.has_pte_table(A));
  EXPECT_TRUE(p->pgd.huge_pmd(A)->write());
  EXPECT_EQ(f.refcount, 1) << "one reference for the PMD";
  EXPECT_EQ(m.large_state(f).entire_mapcount, 1);
  EXPECT_EQ(m.large_state(f).mapcount, 1);
  EXPECT_EQ(page_at(*p, 3).mapcount, 0) << "no PTE maps a page";
  EXPECT_EQ(m.precise_page_mapcount(page_at(*p, 3)), 1) << "the PMD maps every page";
  EXPECT_EQ(page_at(*p, 3).content, 9U);
  EXPECT_EQ(m.check_invariants(), "");
}

TEST_F(PmdThp, AReadFaultMapsTheHugeZeroFolioAndAWriteReplacesIt) {
  m.set_thp_anon_orders(order_bit(PMD_ORDER));
  auto* p = process_with_region(NR);
  ASSERT_EQ(m.access(*p, A, false), 0);
  ASSERT_EQ(p->pgd.huge_pmd(A)->pfn(), HUGE_ZERO_PFN);
  EXPECT_NE(machine::find_vma(*p, A)->anon_vma, nullptr) << "prepared for the zero folio too";
  ASSERT_EQ(m.access(*p, page_addr(A, 7), true, 2), 0);
  EXPECT_NE(p->pgd.huge_pmd(A)->pfn(), HUGE_ZERO_PFN) << "a new THP, no split";
  EXPECT_FALSE(p->pgd.has_pte_table(A));
  EXPECT_EQ(m.check_invariants(), "");
}

TEST_F(PmdThp, ForkCopiesThePmdAndACowSplitsOnlyTheWritersPmd) {
  auto* p = process_with_pmd();
  folio& f = thp(*p);
  auto* c = m.dup_mm(*p, "C");
  EXPECT_EQ(c->pgd.huge_pmd(A)->pfn(), f.pfn);
  EXPECT_FALSE(p->pgd.huge_pmd(A)->write()) << "both sides write-protected";
  EXPECT_FALSE(f.test(folio_flag::anon_exclusive));
  EXPECT_EQ(m.precise_page_mapcount(page_at(*p, 0)), 2);
  ASSERT_EQ(m.access(*c, page_addr(A, 3), true, 4), 0);
  EXPECT_FALSE(c->pgd.huge_pmd(A)) << "the writer's PMD is split";
  EXPECT_TRUE(p->pgd.huge_pmd(A)) << "the other keeps its PMD";
  EXPECT_EQ(folio_at(*c, 3).order, 0U) << "one page copied";
  EXPECT_EQ(m.precise_page_mapcount(page_at(*p, 3)), 1);
  EXPECT_EQ(m.precise_page_mapcount(page_at(*p, 4)), 2);
  EXPECT_EQ(f.refcount, 1 + 511);
  EXPECT_FALSE(m.large_state(f).partially_mapped) << "a PMD still maps every page";
  EXPECT_EQ(m.check_invariants(), "");
  m.exit_mm(c);
  EXPECT_FALSE(m.large_state(f).partially_mapped) << "P's PMD still maps every page";
  ASSERT_EQ(m.access(*p, page_addr(A, 7), true, 5), 0);
  EXPECT_TRUE(p->pgd.huge_pmd(A)->write()) << "the only reference: reused";
  EXPECT_TRUE(f.test(folio_flag::anon_exclusive));
}

TEST_F(PmdThp, PartOfAPmdUnmappedSplitsItAndQueuesTheFolioWhileAllOfItFreesIt) {
  auto* p = process_with_pmd();
  folio& f = thp(*p);
  ASSERT_EQ(m.do_munmap(*p, page_addr(A, 256), 256), 0);
  EXPECT_FALSE(p->pgd.huge_pmd(A));
  EXPECT_EQ(page_at(*p, 0).mapcount, 1);
  EXPECT_TRUE(m.large_state(f).partially_mapped);
  EXPECT_EQ(m.deferred_split_scan(), 1U);
  EXPECT_EQ(m.check_invariants(), "");
  auto* q = process_with_pmd();
  const pfn_t head = thp(*q).pfn;
  ASSERT_EQ(m.do_madvise(*q, A, NR, madv::dontneed), 0);
  EXPECT_FALSE(q->pgd.huge_pmd(A));
  EXPECT_FALSE(m.folio_of(head).in_use()) << "zapped whole: freed, not split";
  EXPECT_TRUE(m.deferred_split_queue().empty());
}

// CONFIG_PT_RECLAIM: a DONTNEED over all of a 2 MiB range frees its PTE table, so the next
// fault there maps a PMD; an munmap of one page keeps it, so the next fault takes a PTE size.
TEST_F(PmdThp, APteTableLeftBehindMakesTheNextFaultAPteFault) {
  m.set_thp_anon_orders(order_bit(4) | order_bit(PMD_ORDER));
  auto* p = process_with_region(2 * NR);
  ASSERT_EQ(m.access(*p, A, false), 0);
  ASSERT_EQ(m.do_mprotect(*p, A, 1, PROT_READ_), 0);  // splits the huge zero PMD
  ASSERT_EQ(m.do_mprotect(*p, A, 1, PROT_READ_ | PROT_WRITE_), 0);
  ASSERT_TRUE(p->pgd.has_pte_table(A));
  ASSERT_EQ(m.access(*p, page_addr(A, 300), true, 1), 0);
  EXPECT_EQ(folio_at(*p, 300).order, 0U) << "a COW of the small zero page the split left there";
  ASSERT_EQ(m.do_madvise(*p, page_addr(A, 256), 32, madv::dontneed), 0);
  ASSERT_EQ(m.access(*p, page_addr(A, 260), true, 1), 0);
  EXPECT_EQ(folio_at(*p, 260).order, 4U) << "an empty 64k block in a table that exists";
  ASSERT_EQ(m.do_madvise(*p, A, NR, madv::dontneed), 0);
  EXPECT_FALSE(p->pgd.has_pte_table(A));
  ASSERT_EQ(m.access(*p, page_addr(A, 300), true, 1), 0);
  EXPECT_TRUE(p->pgd.huge_pmd(A));
  ASSERT_EQ(m.access(*p, page_addr(A, NR), true, 1), 0);                // order 9 at the second 2 MiB
  ASSERT_EQ(m.do_madvise(*p, page_addr(A, NR), 1, madv::dontneed), 0);  // splits; the table stays
  ASSERT_EQ(m.do_munmap(*p, page_addr(A, NR + 1), NR - 1), 0);
  EXPECT_TRUE(p->pgd.has_pte_table(page_addr(A, NR))) << "the VMA still reaches into the range";
  EXPECT_EQ(m.check_invariants(), "");
}

TEST_F(PmdThp, AnAlignedMremapMovesThePmdAndAVmaSplitInsideItSplitsIt) {
  auto* p = process_with_pmd();
  const pfn_t head = thp(*p).pfn;
  const vaddr_t to{A.value + (std::uint64_t{1} << 30)};
  ASSERT_EQ(m.do_mremap_move(*p, A, 2 * NR, to), 0);
  ASSERT_TRUE(p->pgd.huge_pmd(to));
  EXPECT_EQ(p->pgd.huge_pmd(to)->pfn(), head);
  EXPECT_EQ(m.check_invariants(), "");
  ASSERT_EQ(m.do_mprotect(*p, page_addr(to, 100), 100, PROT_READ_), 0);
  EXPECT_FALSE(p->pgd.huge_pmd(to));
  EXPECT_EQ(m.folio_of(head).order, PMD_ORDER) << "the folio stays whole";
  EXPECT_FALSE(m.large_state(m.folio_of(head)).partially_mapped);
  EXPECT_EQ(m.check_invariants(), "");
}

// MADV_COLLAPSE: a block of order-0 pages, a zero page and holes becomes one PMD-mapped
// copy; the pages another process maps stay there. A block with nothing but the zero page,
// a region under VM_NOHUGEPAGE: EINVAL.
TEST_F(PmdThp, CollapseCopiesABlockIntoANewPmdFolioAndLeavesOtherMappingsAlone) {
  m.set_thp_anon_orders(order_bit(4));
  auto* p = process_with_region(2 * NR);
  for (std::uint64_t i = 0; i < 10; ++i) ASSERT_EQ(m.access(*p, page_addr(A, i), true, 100 + i), 0);
  ASSERT_EQ(m.access(*p, page_addr(A, 20), false), 0);
  auto* c = m.dup_mm(*p, "C");
  const pfn_t old = page_at(*p, 3).pfn;
  EXPECT_EQ(m.do_madvise(*p, A, NR, madv::collapse), 0);
  ASSERT_TRUE(p->pgd.huge_pmd(A));
  EXPECT_FALSE(p->pgd.has_pte_table(A));
  folio& f = thp(*p);
  EXPECT_TRUE(f.test(folio_flag::anon_exclusive));
  EXPECT_EQ(m.folio_of(pfn_t{f.pfn.value + 3}).content, 103U) << "copied";
  EXPECT_EQ(m.folio_of(pfn_t{f.pfn.value + 20}).content, 0U);
  EXPECT_EQ(c->pgd.get(page_addr(A, 3)).pfn(), old) << "the child keeps the old page";
  EXPECT_EQ(m.precise_page_mapcount(m.folio_of(old)), 1);
  EXPECT_EQ(m.check_invariants(), "");
  ASSERT_EQ(m.access(*p, page_addr(A, NR + 5), false), 0);  // the second block: one zero page
  EXPECT_EQ(m.do_madvise(*p, A, 2 * NR, madv::collapse), -EINVAL) << "no page mapped in the second block";
  EXPECT_TRUE(p->pgd.huge_pmd(A)) << "the first block stays collapsed";
  auto* q = process_with_region(NR, false);
  ASSERT_EQ(m.do_madvise(*q, A, NR, madv::nohugepage), 0);
  ASSERT_EQ(m.access(*q, A, true, 1), 0);
  EXPECT_EQ(m.do_madvise(*q, A, NR, madv::collapse), -EINVAL);
}

}  // namespace
}  // namespace rmapkit::mm
