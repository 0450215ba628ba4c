// The page table's own operations: move_range() (the kernel's move_page_tables()), which
// hands whole PTE tables over where it can and moves single entries elsewhere, and an
// mremap of a populated, shared region built on it.
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "rmapkit/mm/machine.h"
#include "rmapkit/mm/pgtable.h"
#include "support/mm_fixture.h"

namespace rmapkit::mm {
namespace {

using testing::A;
using testing::B;

constexpr std::uint64_t PAGES_PER_TABLE = PMD_SIZE / PAGE_SIZE;

pte_t entry(std::uint64_t i) { return pte_t::mk_present(pfn_t{1000 + i}, (i & 1) != 0); }

/// Every non-none entry of [start, start + pages) with its page index.
std::vector<std::pair<std::uint64_t, pte_t>> entries(const page_table& pt, vaddr_t start, std::uint64_t pages) {
  std::vector<std::pair<std::uint64_t, pte_t>> out;
  pt.for_each(start, page_addr(start, pages),
              [&](vaddr_t a, pte_t e) { out.emplace_back((a.value - start.value) / PAGE_SIZE, e); });
  return out;
}

/// One table and a half, with holes: pages 0, 3, 511 of the first table and 512..767 of the second.
page_table populated() {
  page_table pt;
  for (std::uint64_t i : {0ULL, 3ULL, 511ULL}) pt.set(page_addr(A, i), entry(i));
  for (std::uint64_t i = PAGES_PER_TABLE; i < PAGES_PER_TABLE + 256; ++i) pt.set(page_addr(A, i), entry(i));
  return pt;
}

TEST(PageTable, MoveHandsAWholeTableOverAndMovesTheRestEntryByEntry) {
  page_table pt = populated();
  const auto before = entries(pt, A, 2 * PAGES_PER_TABLE);
  const std::uint64_t tables = pt.table_pages();
  // [A, A + 3 MiB): the first 2 MiB is a whole table, the next 1 MiB only half of one.
  EXPECT_EQ(pt.move_range(A, page_addr(A, PAGES_PER_TABLE + 256), B), 1U);
  pt.free_empty(A, page_addr(A, 2 * PAGES_PER_TABLE));
  EXPECT_TRUE(entries(pt, A, 2 * PAGES_PER_TABLE).empty()) << "nothing left behind";
  EXPECT_EQ(entries(pt, B, 2 * PAGES_PER_TABLE), before);
  EXPECT_EQ(pt.get(page_addr(B, 511)), entry(511));
  // Source: 2 PTE tables and its PMD and PUD directories freed (the PGD is shared);
  // destination: one PTE table moved, one allocated, its PMD directory allocated (same PUD).
  page_table fresh;
  for (auto [i, e] : before) fresh.set(page_addr(B, i), e);
  EXPECT_EQ(pt.table_pages(), fresh.table_pages());
  EXPECT_LT(pt.table_pages(), tables + 2);
}

TEST(PageTable, MoveToAnUnalignedDestinationMovesEveryEntry) {
  page_table pt = populated();
  const auto before = entries(pt, A, 2 * PAGES_PER_TABLE);
  const vaddr_t to = page_addr(B, 1);
  EXPECT_EQ(pt.move_range(A, page_addr(A, 2 * PAGES_PER_TABLE), to), 0U);
  pt.free_empty(A, page_addr(A, 2 * PAGES_PER_TABLE));
  EXPECT_TRUE(entries(pt, A, 2 * PAGES_PER_TABLE).empty());
  EXPECT_EQ(entries(pt, to, 2 * PAGES_PER_TABLE), before);
}

TEST(PageTable, MoveOverAnEmptyTableReplacesItAndKeepsTheCount) {
  page_table pt = populated();
  pt.set(B, entry(9));
  pt.set(B, pte_t{});  // B's table exists, with no entry
  const std::uint64_t tables = pt.table_pages();
  EXPECT_EQ(pt.move_range(A, page_addr(A, PAGES_PER_TABLE), B), 1U);
  EXPECT_EQ(pt.table_pages(), tables - 1) << "the empty destination table is freed";
  EXPECT_EQ(pt.get(page_addr(B, 3)), entry(3));
}

TEST(PageTable, MoveNeverOverwritesADestinationTableInUse) {
  page_table pt = populated();
  pt.set(page_addr(B, 7), entry(7));
  EXPECT_EQ(pt.move_range(A, page_addr(A, PAGES_PER_TABLE), B), 0U);
  EXPECT_EQ(pt.get(page_addr(B, 7)), entry(7));
  EXPECT_EQ(pt.get(page_addr(B, 511)), entry(511));
  EXPECT_TRUE(pt.get(A).none());
}

struct recorder final : pte_observer {
  std::vector<std::pair<std::uint64_t, bool>> writes;  ///< (address, set or cleared)
  std::vector<std::pair<std::uint64_t, bool>> pmds;    ///< the same, of huge PMDs
  const mm_struct* mm = nullptr;                       ///< the mm every write was reported for
  void pte_set(mm_struct& of, vaddr_t addr, pte_t, pte_t now) override {
    if (mm && mm != &of) ADD_FAILURE() << "a write reported for another mm";
    mm = &of;
    writes.emplace_back(addr.value, !now.none());
  }
  void pmd_set(mm_struct& of, vaddr_t addr, pte_t, pte_t now) override {
    mm = &of;
    pmds.emplace_back(addr.value, !now.none());
  }
};

TEST(PageTable, AnObservedTableReportsEachHugePmdWriteAtItsAlignedAddress) {
  page_table pt;
  recorder r;
  mm_struct owner;
  pt.observe(&r, &owner);
  const vaddr_t h{0x200000};
  pt.set_huge_pmd(page_addr(h, 5), pte_t::mk_present(pfn_t{512}, true));
  pt.set_huge_pmd(h, pte_t::mk_present(pfn_t{512}, false));  // write-protected: still a write
  pt.set_huge_pmd(h, pte_t{});
  pt.set_huge_pmd(h, pte_t{});  // nothing there: nothing written
  EXPECT_EQ(r.pmds, (std::vector<std::pair<std::uint64_t, bool>>{{h.value, true}, {h.value, true}, {h.value, false}}));
  EXPECT_TRUE(r.writes.empty());
  EXPECT_EQ(r.mm, &owner);
}

TEST(PageTable, AnObservedTableMovesEntryByEntryAndReportsEach) {
  page_table pt = populated();
  recorder r;
  mm_struct owner;
  pt.observe(&r, &owner);
  EXPECT_EQ(pt.move_range(A, page_addr(A, PAGES_PER_TABLE), B), 0U);
  ASSERT_EQ(r.writes.size(), 6U);  // three entries: each cleared, then set
  EXPECT_EQ(r.writes[0], std::make_pair(A.value, false));
  EXPECT_EQ(r.writes[1], std::make_pair(B.value, true));
  EXPECT_EQ(r.writes[5], std::make_pair(page_addr(B, 511).value, true));
  EXPECT_EQ(r.mm, &owner);
}

class Mremap : public testing::machine_test {};

TEST_F(Mremap, MovingAPopulatedSharedRegionKeepsEveryPageFoundAtItsNewAddress) {
  auto* p = m.mm_alloc("P");
  const std::uint64_t pages = 3 * PAGES_PER_TABLE + 10;
  ASSERT_EQ(m.do_mmap(*p, A, pages, PROT_READ_ | PROT_WRITE_, false, nullptr, pgoff_t{}), 0);
  for (std::uint64_t i = 0; i < pages; i += 3) ASSERT_EQ(m.access(*p, page_addr(A, i), true, i), 0);
  auto* c = m.dup_mm(*p, "C");
  ASSERT_EQ(m.do_mremap_move(*c, A, pages, B), 0);
  EXPECT_EQ(m.check_invariants(), "");  // every mapped PTE found by a walk, at vma_address()
  for (std::uint64_t i = 0; i < pages; ++i) {
    const pte_t moved = c->pgd.get(page_addr(B, i));
    EXPECT_EQ(moved.present(), i % 3 == 0) << "page " << i;
    EXPECT_TRUE(c->pgd.get(page_addr(A, i)).none()) << "page " << i;
    if (moved.present()) {
      EXPECT_EQ(moved.pfn(), p->pgd.get(page_addr(A, i)).pfn()) << "page " << i;
    }
  }
  ASSERT_EQ(m.access(*c, page_addr(B, 3), true, 7), 0);  // COW at the new address
  EXPECT_NE(c->pgd.get(page_addr(B, 3)).pfn(), p->pgd.get(page_addr(A, 3)).pfn());
}

}  // namespace
}  // namespace rmapkit::mm
