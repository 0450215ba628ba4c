// KSM in the model: the sysfs counters for N identical pages under max_page_sharing,
// the formula the kernel's ksm selftests rely on (checked on the kernel: 257 pages leave
// one page unshared, 600 give 256+256+88, 1000 give 3x256+232).
#include <string_view>

#include <gtest/gtest.h>

#include "rmapkit/mm/machine.h"

namespace rmapkit::mm {
namespace {

constexpr vaddr_t A{0x100000000000ULL};

class KsmSharing : public ::testing::TestWithParam<std::uint64_t> {};

TEST_P(KsmSharing, IdenticalPagesFillStableNodeDupsOfMaxPageSharing) {
  const std::uint64_t n = GetParam();
  machine m;
  auto* p = m.mm_alloc("P");
  ASSERT_EQ(m.do_mmap(*p, A, n, PROT_READ_ | PROT_WRITE_, false, nullptr, pgoff_t{}), 0);
  ASSERT_EQ(m.do_madvise(*p, A, n, madv::mergeable), 0);
  for (std::uint64_t i = 0; i < n; ++i) ASSERT_EQ(m.access(*p, page_addr(A, i), true, 1), 0);
  m.ksm_run_to_fixpoint();
  const std::uint64_t full = n / KSM_MAX_PAGE_SHARING, rest = n % KSM_MAX_PAGE_SHARING;
  const std::uint64_t shared = full + (rest >= 2 ? 1 : 0);  // a lone leftover page has no partner
  const std::uint64_t merged = full * KSM_MAX_PAGE_SHARING + (rest >= 2 ? rest : 0);
  auto k = m.ksm_counters();
  EXPECT_EQ(k.pages_shared, shared);
  EXPECT_EQ(k.pages_sharing, merged - shared);
  EXPECT_EQ(k.pages_unshared, n - merged);
  EXPECT_EQ(k.stable_node_chains, shared > 1 ? 1U : 0U);
  EXPECT_EQ(k.stable_node_dups, shared > 1 ? shared : 0U);
  EXPECT_EQ(m.check_invariants(), "");
  // Every KSM page is write-protected: a write copies, even of the last sharer.
  auto kpfn = p->pgd.get(A).pfn();
  ASSERT_EQ(m.access(*p, A, true, 1), 0);
  EXPECT_NE(p->pgd.get(A).pfn(), kpfn);
  EXPECT_TRUE(m.folio_of(p->pgd.get(A).pfn()).test(folio_flag::anon_exclusive));
  m.exit_mm(p);
  EXPECT_GT(m.live().anon_vmas, 0U) << "the exited mm's rmap_items pin its anon_vma until ksmd's next scan";
  m.ksm_drop_exited();
  auto live = m.live();
  EXPECT_EQ(live.anon_vmas + live.avcs + live.folios, 0U) << "leak";
}

INSTANTIATE_TEST_SUITE_P(N, KsmSharing, ::testing::Values(2, 3, 100, 255, 256, 257, 258, 512, 513, 600, 1000));

// A page read back from swap and then written is dirty only in its PTE while it stays in
// the swap cache. Merging write-protects the PTE and cleans it, so the dirt must move to
// the folio: otherwise, once every sharer has copied the KSM page away, a clean swap-cache
// folio would differ from its slot and reclaim could drop the only copy of the data.
// ksm-flat (before 4.13): one stable node takes every mapping of its content, and a walk
// of its page (migration, unmapping) reads every one of them; ksm-chains caps a page at 256.
TEST(KsmDesigns, TheFlatTreeKeepsOnePageForEveryMappingAndMigrationAndUnmapWalkThemAll) {
  for (const char* design : {"linux-6", "linux-6+ksm-flat"}) {
    machine m(design);
    auto* p = m.mm_alloc("P");
    const std::uint64_t n = 600;
    ASSERT_EQ(m.do_mmap(*p, A, n, PROT_READ_ | PROT_WRITE_, false, nullptr, pgoff_t{}), 0);
    ASSERT_EQ(m.do_madvise(*p, A, n, madv::mergeable), 0);
    for (std::uint64_t i = 0; i < n; ++i) ASSERT_EQ(m.access(*p, page_addr(A, i), true, 1), 0);
    m.ksm_run_to_fixpoint();
    const bool flat = std::string_view(design) == "linux-6+ksm-flat";
    const auto k = m.ksm_counters();
    EXPECT_EQ(k.pages_shared, flat ? 1U : 3U) << design;
    EXPECT_EQ(k.stable_node_chains, flat ? 0U : 1U) << design;
    const pfn_t page = p->pgd.get(A).pfn();
    EXPECT_EQ(m.folio_of(page).mapcount, flat ? 600 : 256) << design;
    m.stats() = {};
    const auto moved = m.migrate_folio(page);
    ASSERT_TRUE(moved);
    EXPECT_EQ(m.stats().ptes_examined, flat ? 600U : 256U) << design;
    // Unmapping it (reclaim's try_to_unmap, after add_to_swap) walks the same rmap_items.
    folio& f = m.folio_of(*moved);
    ASSERT_TRUE(m.add_to_swap(f));
    m.stats() = {};
    EXPECT_TRUE(m.try_to_unmap(f)) << design;
    EXPECT_EQ(m.stats().ptes_examined, flat ? 600U : 256U) << design;
    EXPECT_EQ(m.check_invariants(), "");
    m.exit_mm(p);
    m.ksm_drop_exited();
    EXPECT_EQ(m.live().total(), 0U) << design;
  }
}

TEST(KsmMerge, WriteProtectMovesAPtesDirtyBitToTheFolio) {
  machine m;
  auto* p = m.mm_alloc("P");
  ASSERT_EQ(m.do_mmap(*p, A, 2, PROT_READ_ | PROT_WRITE_, false, nullptr, pgoff_t{}), 0);
  for (std::uint64_t i = 0; i < 2; ++i) ASSERT_EQ(m.access(*p, page_addr(A, i), true, 1), 0);
  ASSERT_EQ(m.do_madvise(*p, A, 2, madv::mergeable), 0);
  ASSERT_EQ(m.do_madvise(*p, A, 2, madv::pageout), 0);
  for (std::uint64_t i = 0; i < 2; ++i) ASSERT_EQ(m.access(*p, page_addr(A, i), false), 0);  // swap-in
  for (std::uint64_t i = 0; i < 2; ++i) ASSERT_EQ(m.access(*p, page_addr(A, i), true, 2), 0);
  const folio& before = m.folio_of(p->pgd.get(A).pfn());
  ASSERT_TRUE(before.test(folio_flag::swapcache)) << "the written page stays in the swap cache";
  m.ksm_run_to_fixpoint();
  const pte_t merged = p->pgd.get(A);
  ASSERT_TRUE(m.folio_of(merged.pfn()).is_ksm());
  EXPECT_FALSE(merged.dirty()) << "write_protect_page() cleans the PTE";
  EXPECT_TRUE(m.folio_of(merged.pfn()).test(folio_flag::dirty)) << "and the folio carries its dirt";
  for (std::uint64_t i = 0; i < 2; ++i) ASSERT_EQ(m.access(*p, page_addr(A, i), true, 2), 0);  // COW both
  EXPECT_EQ(m.check_invariants(), "");
  m.exit_mm(p);
  m.ksm_drop_exited();
  m.drop_swap_cache();
  auto live = m.live();
  EXPECT_EQ(live.anon_vmas + live.avcs + live.folios, 0U) << "leak";
}

}  // namespace
}  // namespace rmapkit::mm
