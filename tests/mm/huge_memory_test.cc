// Anonymous large folios mapped by PTEs (mTHP): which order a fault allocates, the two mm
// slots that decide COW reuse, partial unmapping and the deferred split, on hand-built
// states. The kernel's answers for the same situations are the version 2 corpus
// (tests/scenarios/v2/); these tests pin the model's state behind them.
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

}  // namespace
}  // namespace rmapkit::mm
