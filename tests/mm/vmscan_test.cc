// The LRU lists and the reclaim scan: where folios start, how references age them
// (folio_referenced() keeps or activates, shrink_active_list() deactivates), how
// try_to_unmap() and the swap write take them out, and how mlock keeps them.
#include <algorithm>

#include "../support/mm_fixture.h"

namespace rmapkit::mm::testing {
namespace {

constexpr int RW = PROT_READ_ | PROT_WRITE_;

class Vmscan : public machine_test {
 protected:
  bool on(lru_list l, pfn_t pfn) const {
    auto v = m.lru_folios(l);
    return std::find(v.begin(), v.end(), pfn) != v.end();
  }
  pfn_t pfn_at(mm_struct& mm, vaddr_t a) const { return mm.pgd.get(a).pfn(); }
  std::uint64_t stat(const char* name) const {
    const auto events = m.vmstat();
    auto it = events.find(name);
    return it == events.end() ? 0 : it->second;
  }
};

TEST_F(Vmscan, NewAnonAndShmemPagesStartInactiveOnTheAnonList) {
  auto* p = m.mm_alloc("P");
  ASSERT_EQ(m.do_mmap(*p, A, 1, RW, false, nullptr, pgoff_t{}), 0);
  ASSERT_EQ(m.access(*p, A, true, 7), 0);
  EXPECT_TRUE(on(lru_list::inactive_anon, pfn_at(*p, A)));
  ASSERT_EQ(m.do_mmap(*p, B, 1, RW, true, nullptr, pgoff_t{}), 0);  // shared anonymous: shmem
  ASSERT_EQ(m.access(*p, B, true, 7), 0);
  EXPECT_TRUE(on(lru_list::inactive_anon, pfn_at(*p, B))) << "shmem is swap-backed: anon LRU";
  EXPECT_EQ(m.lru_size(lru_list::inactive_file), 0U);
  EXPECT_EQ(m.lru_size(lru_list::inactive_anon), 2U);
}

TEST_F(Vmscan, OneYoungMappingKeepsAFolioOneRoundThenItIsWrittenThenFreed) {
  auto* p = m.mm_alloc("P");
  ASSERT_EQ(m.do_mmap(*p, A, 1, RW, false, nullptr, pgoff_t{}), 0);
  ASSERT_EQ(m.access(*p, A, true, 7), 0);
  const pfn_t pfn = pfn_at(*p, A);

  EXPECT_TRUE(m.shrink_lruvec());  // its young PTE keeps it, now PG_referenced
  EXPECT_TRUE(p->pgd.get(A).present());
  EXPECT_FALSE(p->pgd.get(A).young());
  EXPECT_TRUE(m.folio_of(pfn).test(folio_flag::referenced));
  EXPECT_TRUE(on(lru_list::inactive_anon, pfn));

  EXPECT_TRUE(m.shrink_lruvec());  // unreferenced: to swap, written, kept under writeback
  EXPECT_TRUE(p->pgd.get(A).is_swap());
  EXPECT_TRUE(m.folio_of(pfn).test(folio_flag::swapcache));
  EXPECT_EQ(stat("pswpout"), 1U);
  EXPECT_EQ(stat("pgsteal_anon"), 0U);

  EXPECT_TRUE(m.shrink_lruvec());  // clean and unmapped: freed
  EXPECT_FALSE(m.folio_of(pfn).in_use());
  EXPECT_EQ(stat("pgsteal_anon"), 1U);
  EXPECT_EQ(stat("pgscan_anon"), 3U)
      << "three scans per page, as the kernel's memcg reclaim does (pgscan_anon = 3 x pgsteal_anon)";
  EXPECT_FALSE(m.shrink_lruvec()) << "nothing left to do";
}

TEST_F(Vmscan, TwoYoungMappingsActivateThenAgingDeactivates) {
  auto* p = m.mm_alloc("P");
  ASSERT_EQ(m.do_mmap(*p, A, 1, RW, true, nullptr, pgoff_t{}), 0);
  auto* c = m.dup_mm(*p, "C");
  ASSERT_EQ(m.access(*p, A, true, 7), 0);
  ASSERT_EQ(m.access(*c, A, false), 0);
  const pfn_t pfn = pfn_at(*p, A);
  ASSERT_EQ(pfn, pfn_at(*c, A));

  m.shrink_lruvec();
  EXPECT_TRUE(on(lru_list::active_anon, pfn)) << "referenced by two VMAs: activated";
  EXPECT_EQ(stat("pgactivate"), 1U);
  m.shrink_lruvec();  // aged to the inactive list, then unmapped from both and written
  EXPECT_EQ(stat("pgdeactivate"), 1U);
  EXPECT_TRUE(p->pgd.get(A).none()) << "a reclaimed shmem page leaves no PTE";
  EXPECT_TRUE(c->pgd.get(A).none());
  m.shrink_lruvec();
  EXPECT_FALSE(m.folio_of(pfn).in_use());
}

TEST_F(Vmscan, MlockedFoliosAreUnevictableUntilTheLastLockedMappingGoes) {
  auto* f = m.memfd_create("F", 1, 1);
  files.push_back(f);
  const pfn_t pfn{f->i_pages.at(0)};
  EXPECT_TRUE(on(lru_list::inactive_anon, pfn));
  auto* p = m.mm_alloc("P");
  auto* q = m.mm_alloc("Q");
  ASSERT_EQ(m.do_mmap(*p, A, 1, RW, true, f, pgoff_t{}), 0);
  ASSERT_EQ(m.do_mmap(*q, A, 1, RW, true, f, pgoff_t{}), 0);
  ASSERT_EQ(m.do_mlock(*p, A, 1, true), 0);  // populates, then mlocks
  ASSERT_EQ(m.do_mlock(*q, A, 1, true), 0);
  EXPECT_TRUE(on(lru_list::unevictable, pfn));
  EXPECT_TRUE(m.folio_of(pfn).test(folio_flag::mlocked));

  m.shrink_all();
  EXPECT_TRUE(p->pgd.get(A).present()) << "reclaim leaves mlocked pages alone";
  ASSERT_EQ(m.do_mlock(*p, A, 1, false), 0);
  EXPECT_TRUE(on(lru_list::unevictable, pfn)) << "Q still has it locked";
  ASSERT_EQ(m.do_munmap(*q, A, 1), 0);
  EXPECT_TRUE(on(lru_list::inactive_anon, pfn)) << "the last locked mapping went: evictable again";
  EXPECT_FALSE(m.folio_of(pfn).test(folio_flag::mlocked));
  EXPECT_EQ(stat("unevictable_pgs_rescued"), 1U);
  m.shrink_all();
  EXPECT_TRUE(p->pgd.get(A).none());
}

TEST_F(Vmscan, FaultsInALockedVmaGoStraightToTheUnevictableList) {
  auto* p = m.mm_alloc("P");
  ASSERT_EQ(m.do_mmap(*p, A, 2, RW, false, nullptr, pgoff_t{}), 0);
  ASSERT_EQ(m.do_mlock(*p, A, 2, true), 0);
  EXPECT_EQ(m.lru_size(lru_list::unevictable), 2U);
  EXPECT_EQ(m.lru_size(lru_list::inactive_anon), 0U);
  // A COW copy in a locked VMA is locked too, and the old page is let go: the child
  // (fork does not inherit VM_LOCKED) keeps it, evictable.
  auto* c = m.dup_mm(*p, "C");
  const pfn_t old = pfn_at(*p, A);
  EXPECT_EQ(pfn_at(*c, A), old);
  ASSERT_EQ(m.access(*p, A, true, 9), 0);
  const pfn_t copy = pfn_at(*p, A);
  ASSERT_NE(copy, old) << "the write must copy the page C shares";
  EXPECT_TRUE(on(lru_list::unevictable, copy));
  EXPECT_TRUE(m.folio_of(copy).test(folio_flag::mlocked));
  EXPECT_TRUE(on(lru_list::inactive_anon, old)) << "only C maps the old page now";
  EXPECT_FALSE(m.folio_of(old).test(folio_flag::mlocked));
  EXPECT_EQ(m.lru_size(lru_list::unevictable), 2U);
  m.exit_mm(c);
  EXPECT_FALSE(m.folio_of(old).in_use());
  EXPECT_EQ(m.lru_size(lru_list::unevictable), 2U);
  EXPECT_EQ(m.lru_size(lru_list::inactive_anon), 0U);
}

TEST_F(Vmscan, PageoutOfAKsmPageMappedOnceKeepsItInTheSwapCache) {
  auto* p = m.mm_alloc("P");
  ASSERT_EQ(m.do_mmap(*p, A, 2, RW, false, nullptr, pgoff_t{}), 0);
  ASSERT_EQ(m.do_madvise(*p, A, 2, madv::mergeable), 0);
  ASSERT_EQ(m.access(*p, A, true, 5), 0);
  ASSERT_EQ(m.access(*p, page_addr(A, 1), true, 5), 0);
  m.ksm_run_to_fixpoint();
  const pfn_t kpfn = pfn_at(*p, A);
  ASSERT_TRUE(m.folio_of(kpfn).is_ksm());
  ASSERT_EQ(m.access(*p, A, true, 6), 0);  // copies: the KSM page is mapped once now

  ASSERT_EQ(m.do_madvise(*p, page_addr(A, 1), 1, madv::pageout), 0);
  EXPECT_TRUE(p->pgd.get(page_addr(A, 1)).is_swap());
  EXPECT_FALSE(p->pgd.get(page_addr(A, 1)).swp_exclusive()) << "a KSM page is never exclusive";
  EXPECT_TRUE(m.folio_of(kpfn).in_use()) << "written, and kept in the swap cache until reclaim";
  EXPECT_TRUE(m.folio_of(kpfn).is_ksm());

  ASSERT_EQ(m.access(*p, page_addr(A, 1), false), 0);  // swap-in finds the KSM folio
  EXPECT_EQ(pfn_at(*p, page_addr(A, 1)), kpfn);
  EXPECT_TRUE(m.folio_of(kpfn).is_ksm());
  EXPECT_TRUE(m.folio_of(kpfn).test(folio_flag::swapcache));
  EXPECT_EQ(stat("pswpin"), 0U) << "a swap-cache hit reads nothing";
}

TEST_F(Vmscan, MigrationKeepsTheLruPlaceAndState) {
  auto* p = m.mm_alloc("P");
  ASSERT_EQ(m.do_mmap(*p, A, 1, RW, true, nullptr, pgoff_t{}), 0);
  auto* c = m.dup_mm(*p, "C");
  ASSERT_EQ(m.access(*p, A, true, 7), 0);
  ASSERT_EQ(m.access(*c, A, false), 0);
  m.shrink_lruvec();  // activated
  auto moved = m.migrate_folio(pfn_at(*p, A));
  ASSERT_TRUE(moved);
  EXPECT_TRUE(on(lru_list::active_anon, *moved));
  EXPECT_EQ(m.lru_size(lru_list::active_anon), 1U);
}

}  // namespace
}  // namespace rmapkit::mm::testing
