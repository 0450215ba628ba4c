// KSM in the kernel's order (Linux 6.18):
// - a write fault that copies a KSM page read back from swap: when the copy took the old
//   folio's last mapping and no swap entry refers to it any more, the kernel drops it from
//   the swap cache at once (wp_page_copy()'s free_swap_cache(): the old frame is freed and
//   its stable node goes stale); the model used to keep it cached;
// - the checksum test comes before the stable tree search;
// - ksmd forgets an mm in which a whole pass found no VM_MERGEABLE VMA, so a later
//   MADV_MERGEABLE registers it again at the end of the scan order;
// - which dup of a stable-node chain takes a page (the head's first with room, or in a
//   prune pass the fullest), and a chain that lives on with one dup until a search.
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include "rmapkit/mm/machine.h"

namespace rmapkit::mm {
namespace {

constexpr vaddr_t A{0x100000000000ULL};
constexpr vaddr_t B{0x100040000000ULL};

/// P maps A and Q maps B, one page each, both registered with KSM (P first); write()
/// puts a value in each page.
class TwoMergeable : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(m.do_mmap(*p, A, 1, PROT_READ_ | PROT_WRITE_, false, nullptr, pgoff_t{}), 0);
    ASSERT_EQ(m.do_mmap(*q, B, 1, PROT_READ_ | PROT_WRITE_, false, nullptr, pgoff_t{}), 0);
    ASSERT_EQ(m.do_madvise(*p, A, 1, madv::mergeable), 0);
    ASSERT_EQ(m.do_madvise(*q, B, 1, madv::mergeable), 0);
  }
  void write(std::uint64_t p_value, std::uint64_t q_value) {
    ASSERT_EQ(m.access(*p, A, true, p_value), 0);
    ASSERT_EQ(m.access(*q, B, true, q_value), 0);
  }
  machine m;
  mm_struct* p = m.mm_alloc("P");
  mm_struct* q = m.mm_alloc("Q");
};

using KsmCow = TwoMergeable;

TEST_F(KsmCow, CopyingTheLastMappingOfASwappedInKsmPageFreesItsSwapCache) {
  write(5, 5);
  m.ksm_run_to_fixpoint();
  ASSERT_EQ(m.ksm_counters().pages_shared, 1U);
  ASSERT_EQ(m.access(*q, B, true, 6), 0);  // Q copies: the KSM page is P's alone
  ASSERT_EQ(m.do_madvise(*p, A, 1, madv::pageout), 0);
  ASSERT_TRUE(p->pgd.get(A).is_swap()) << "a KSM page mapped once is paged out";
  ASSERT_EQ(m.access(*p, A, false), 0);  // read back: mapped again, still in the swap cache
  const pfn_t kpfn = p->pgd.get(A).pfn();
  ASSERT_TRUE(m.folio_of(kpfn).is_ksm());
  ASSERT_TRUE(m.folio_of(kpfn).test(folio_flag::swapcache));
  const auto folios_before = m.live().folios;

  ASSERT_EQ(m.access(*p, A, true, 7), 0);  // a KSM page is always copied on write
  EXPECT_NE(p->pgd.get(A).pfn(), kpfn);
  EXPECT_FALSE(m.folio_of(kpfn).in_use()) << "the old KSM folio must leave the swap cache and be freed";
  EXPECT_EQ(m.live().folios, folios_before) << "one folio allocated for the copy, the old one freed";
  EXPECT_EQ(m.check_invariants(), "");
  // The stable node is stale now, and the next scan drops it.
  m.ksm_run_to_fixpoint();
  EXPECT_EQ(m.ksm_counters().pages_shared, 0U);
}

using KsmChecksum = TwoMergeable;

// In 6.18, cmp_and_merge_page() tests a page's checksum before it searches the stable
// tree: a page new to ksmd (or changed since its last visit) merges with nothing in that
// pass, not even with an existing KSM page of equal content.
TEST_F(KsmChecksum, APageNewToKsmdWaitsAPassEvenForAnEqualStablePage) {
  write(5, 5);
  m.ksm_run_to_fixpoint();
  ASSERT_EQ(m.ksm_counters().pages_sharing, 1U);
  const pfn_t kpfn = p->pgd.get(A).pfn();
  constexpr vaddr_t A1{0x100000001000ULL};
  ASSERT_EQ(m.do_mmap(*p, A1, 1, PROT_READ_ | PROT_WRITE_, false, nullptr, pgoff_t{}), 0);
  ASSERT_EQ(m.do_madvise(*p, A1, 1, madv::mergeable), 0);
  ASSERT_EQ(m.access(*p, A1, true, 5), 0);  // equal to the KSM page
  (void)m.ksm_scan_once();
  EXPECT_NE(p->pgd.get(A1).pfn(), kpfn) << "merged in the pass that first saw the page";
  EXPECT_EQ(m.ksm_counters().pages_sharing, 1U);
  (void)m.ksm_scan_once();
  EXPECT_EQ(p->pgd.get(A1).pfn(), kpfn) << "the second pass merges it into the stable page";
  EXPECT_EQ(m.ksm_counters().pages_sharing, 2U);
  EXPECT_EQ(m.check_invariants(), "");
}

std::vector<const mm_struct*> scan_order(const machine& m) { return m.ksm_snapshot().mm_slots; }

using KsmScan = TwoMergeable;

TEST_F(KsmScan, AnMmWithNoMergeableVmaLeftIsForgottenAndRegistersAgainAtTheEnd) {
  write(5, 9);
  EXPECT_EQ(scan_order(m), (std::vector<const mm_struct*>{p, q}));

  ASSERT_EQ(m.do_madvise(*p, A, 1, madv::unmergeable), 0);
  EXPECT_EQ(scan_order(m), (std::vector<const mm_struct*>{p, q})) << "nothing changes until ksmd looks";
  m.ksm_run_to_fixpoint();
  EXPECT_EQ(scan_order(m), (std::vector<const mm_struct*>{q})) << "a pass found no mergeable VMA in P";
  EXPECT_FALSE(p->ksm_registered);

  ASSERT_EQ(m.do_madvise(*p, A, 1, madv::mergeable), 0);
  EXPECT_EQ(scan_order(m), (std::vector<const mm_struct*>{q, p})) << "registered again, at the end";
  // A mergeable VMA with no anon_vma yet (nothing faulted) still keeps its mm registered.
  auto* r = m.mm_alloc("R");
  ASSERT_EQ(m.do_mmap(*r, A, 1, PROT_READ_ | PROT_WRITE_, false, nullptr, pgoff_t{}), 0);
  ASSERT_EQ(m.do_madvise(*r, A, 1, madv::mergeable), 0);
  m.ksm_run_to_fixpoint();
  EXPECT_EQ(scan_order(m), (std::vector<const mm_struct*>{q, p, r}));
  EXPECT_EQ(m.check_invariants(), "");
}

/// 300 equal pages in one region: two KSM pages of one content, X with 256 mappings
/// (pages 0-255) and Y with 44 (pages 256-299), dups of one chain, Y at its head.
class Chain : public ::testing::Test {
 protected:
  static constexpr std::uint64_t N = 300;
  void SetUp() override {
    ASSERT_EQ(m.do_mmap(*p, A, N, PROT_READ_ | PROT_WRITE_, false, nullptr, pgoff_t{}), 0);
    ASSERT_EQ(m.do_madvise(*p, A, N, madv::mergeable), 0);
    write(0, N);
    m.ksm_run_to_fixpoint();
    ASSERT_EQ(counters(), (std::vector<std::uint64_t>{2, 298, 1, 2}));
    x = frame(0);
    y = frame(N - 1);
    ASSERT_NE(x, y);
  }
  void write(std::uint64_t first, std::uint64_t last) {
    for (auto i = first; i < last; ++i) ASSERT_EQ(m.access(*p, page(i), true, 1), 0);
  }
  static vaddr_t page(std::uint64_t i) { return vaddr_t{A.value + i * PAGE_SIZE}; }
  pfn_t frame(std::uint64_t i) const { return p->pgd.get(page(i)).pfn(); }
  int mapcount(pfn_t f) { return m.folio_of(f).mapcount; }
  /// pages_shared, pages_sharing, stable_node_chains, stable_node_dups.
  std::vector<std::uint64_t> counters() const {
    auto k = m.ksm_counters();
    return {k.pages_shared, k.pages_sharing, k.stable_node_chains, k.stable_node_dups};
  }
  machine m;
  mm_struct* p = m.mm_alloc("P");
  pfn_t x, y;
};

TEST_F(Chain, OutsideAPrunePassTheFirstDupWithRoomInListOrderTakesThePage) {
  write(0, 100);  // X keeps 156 mappings
  m.ksm_run_to_fixpoint();
  EXPECT_EQ(frame(0), y) << "Y is at the head of the chain and has room";
  EXPECT_EQ(mapcount(y), 144);
  EXPECT_EQ(mapcount(x), 156);
  EXPECT_EQ(m.check_invariants(), "");
}

TEST_F(Chain, APrunePassTakesTheFullestDupWithRoom) {
  write(0, 100);
  m.ksm_run_to_fixpoint(true);
  EXPECT_EQ(frame(0), x) << "X (156) is fuller than Y (44)";
  EXPECT_EQ(mapcount(x), 256);
  EXPECT_EQ(mapcount(y), 44);
  EXPECT_EQ(m.check_invariants(), "");
}

TEST_F(Chain, AChainOutlivesItsDupsUntilASearchCollapsesIt) {
  ASSERT_EQ(m.do_munmap(*p, page(256), 44), 0);  // Y's KSM page is gone
  m.ksm_run_to_fixpoint();
  EXPECT_EQ(counters(), (std::vector<std::uint64_t>{1, 255, 1, 1})) << "Y left the chain; the chain stays";
  write(0, 1);
  m.ksm_run_to_fixpoint();
  EXPECT_EQ(frame(0), x);
  EXPECT_EQ(counters(), (std::vector<std::uint64_t>{1, 255, 0, 0})) << "the search collapsed the chain into X";
  EXPECT_EQ(m.check_invariants(), "");
}

}  // namespace
}  // namespace rmapkit::mm
