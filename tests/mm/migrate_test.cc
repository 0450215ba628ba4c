// Migration: every mapping of a frame moves to the new frame with its state, whatever
// the frame is (anon shared by fork and moved by mremap, file, shmem, KSM, swap cache).
#include <gtest/gtest.h>

#include "rmapkit/mm/machine.h"
#include "support/mm_fixture.h"

namespace rmapkit::mm {
namespace {

using testing::A;
using testing::B;

class Migrate : public testing::machine_test {
 protected:
  /// Migrates the frame at (@mm, @addr) and checks that every listed mapping moved with
  /// its PTE bits and the folio its flags.
  void migrate_and_check(mm_struct& mm, vaddr_t addr, const std::vector<std::pair<mm_struct*, vaddr_t>>& maps) {
    pte_t before = mm.pgd.get(addr);
    folio& f = m.folio_of(before.pfn());
    const int mapcount = f.mapcount;
    const auto flags = f.flags;
    const auto content = f.content;
    std::vector<pte_t> old;
    for (auto [p, a] : maps) old.push_back(p->pgd.get(a));
    ASSERT_EQ(m.check_invariants(), "");
    auto dst = m.migrate_folio(before.pfn());
    ASSERT_TRUE(dst);
    EXPECT_NE(*dst, before.pfn());
    folio& g = m.folio_of(*dst);
    EXPECT_EQ(g.mapcount, mapcount);
    EXPECT_EQ(g.flags, flags);
    EXPECT_EQ(g.content, content);
    for (std::size_t i = 0; i < maps.size(); ++i) {
      pte_t now = maps[i].first->pgd.get(maps[i].second);
      EXPECT_EQ(now.pfn(), *dst) << i;
      EXPECT_EQ(now.write(), old[i].write()) << i;
      EXPECT_EQ(now.young(), old[i].young()) << i;
      EXPECT_EQ(now.dirty(), old[i].dirty()) << i;
    }
    EXPECT_EQ(m.check_invariants(), "");
  }
};

TEST_F(Migrate, AnonPageSharedByForkAndMovedByMremap) {
  auto* p = m.mm_alloc("P");
  ASSERT_EQ(m.do_mmap(*p, A, 4, PROT_READ_ | PROT_WRITE_, false, nullptr, pgoff_t{}), 0);
  ASSERT_EQ(m.access(*p, page_addr(A, 1), true, 9), 0);
  auto* c = m.dup_mm(*p, "C");
  auto* g = m.dup_mm(*c, "G");
  ASSERT_EQ(m.do_mremap_move(*g, A, 4, B), 0);
  migrate_and_check(*p, page_addr(A, 1), {{p, page_addr(A, 1)}, {c, page_addr(A, 1)}, {g, page_addr(B, 1)}});
}

TEST_F(Migrate, ExclusiveWritablePageStaysExclusiveAndWritable) {
  auto* p = m.mm_alloc("P");
  ASSERT_EQ(m.do_mmap(*p, A, 1, PROT_READ_ | PROT_WRITE_, false, nullptr, pgoff_t{}), 0);
  ASSERT_EQ(m.access(*p, A, true, 1), 0);
  ASSERT_TRUE(p->pgd.get(A).write());
  migrate_and_check(*p, A, {{p, A}});
  EXPECT_TRUE(m.folio_of(p->pgd.get(A).pfn()).test(folio_flag::anon_exclusive));
  // Written again without a fault: reuse, not copy.
  auto pfn = p->pgd.get(A).pfn();
  ASSERT_EQ(m.access(*p, A, true, 2), 0);
  EXPECT_EQ(p->pgd.get(A).pfn(), pfn);
}

TEST_F(Migrate, FilePageMappedSharedAndPrivatelyFollowsThePageCache) {
  auto* f = m.memfd_create("F", 4, 3);
  files.push_back(f);
  auto* p = m.mm_alloc("P");
  auto* q = m.mm_alloc("Q");
  ASSERT_EQ(m.do_mmap(*p, A, 4, PROT_READ_ | PROT_WRITE_, true, f, pgoff_t{}), 0);
  ASSERT_EQ(m.do_mmap(*q, B, 4, PROT_READ_, false, f, pgoff_t{}), 0);
  ASSERT_EQ(m.access(*p, page_addr(A, 2), true, 5), 0);
  ASSERT_EQ(m.access(*q, page_addr(B, 2), false), 0);
  migrate_and_check(*p, page_addr(A, 2), {{p, page_addr(A, 2)}, {q, page_addr(B, 2)}});
  EXPECT_EQ(f->i_pages.at(2), p->pgd.get(page_addr(A, 2)).pfn());
  // A new mapping finds the new frame through the page cache.
  auto* r = m.mm_alloc("R");
  ASSERT_EQ(m.do_mmap(*r, A, 4, PROT_READ_, true, f, pgoff_t{}), 0);
  ASSERT_EQ(m.access(*r, page_addr(A, 2), false), 0);
  EXPECT_EQ(r->pgd.get(page_addr(A, 2)).pfn(), p->pgd.get(page_addr(A, 2)).pfn());
}

TEST_F(Migrate, ShmemPageOfForkedProcesses) {
  auto* p = m.mm_alloc("P");
  ASSERT_EQ(m.do_mmap(*p, A, 2, PROT_READ_ | PROT_WRITE_, true, nullptr, pgoff_t{}), 0);
  ASSERT_EQ(m.access(*p, A, true, 4), 0);
  auto* c = m.dup_mm(*p, "C");
  ASSERT_EQ(m.access(*c, A, false), 0);  // the child refaults the shared page
  migrate_and_check(*p, A, {{p, A}, {c, A}});
}

TEST_F(Migrate, KsmPageWithForkedSharers) {
  auto* p = m.mm_alloc("P");
  ASSERT_EQ(m.do_mmap(*p, A, 4, PROT_READ_ | PROT_WRITE_, false, nullptr, pgoff_t{}), 0);
  ASSERT_EQ(m.do_madvise(*p, A, 4, madv::mergeable), 0);
  for (int i = 0; i < 4; ++i) ASSERT_EQ(m.access(*p, page_addr(A, static_cast<std::uint64_t>(i)), true, 77), 0);
  m.ksm_run_to_fixpoint();
  ASSERT_TRUE(m.folio_of(p->pgd.get(A).pfn()).is_ksm());
  auto* c = m.dup_mm(*p, "C");
  std::vector<std::pair<mm_struct*, vaddr_t>> maps;
  for (auto* mm : {p, c})
    for (std::uint64_t i = 0; i < 4; ++i) maps.emplace_back(mm, page_addr(A, i));
  migrate_and_check(*p, A, maps);
  // rmap_walk_ksm finds all eight mappings of the new frame.
  int visited = 0;
  rmap_walk_control rwc;
  rwc.rmap_one = [&](folio& f, vm_area_struct& vma, vaddr_t a) {
    visited += m.page_vma_mapped(f, vma, a) ? 1 : 0;
    return true;
  };
  m.rmap_walk(m.folio_of(p->pgd.get(A).pfn()), rwc);
  EXPECT_EQ(visited, 8);
}

TEST_F(Migrate, SwapCacheFolioKeepsItsSlot) {
  auto* p = m.mm_alloc("P");
  ASSERT_EQ(m.do_mmap(*p, A, 1, PROT_READ_ | PROT_WRITE_, false, nullptr, pgoff_t{}), 0);
  ASSERT_EQ(m.access(*p, A, true, 1), 0);
  auto* c = m.dup_mm(*p, "C");
  folio& f = m.folio_of(p->pgd.get(A).pfn());
  ASSERT_TRUE(m.add_to_swap(f));
  ASSERT_TRUE(m.try_to_unmap(f));
  ASSERT_EQ(m.access(*c, A, false), 0);  // C maps the swap-cache folio; P keeps the entry
  migrate_and_check(*c, A, {{c, A}});
  ASSERT_EQ(m.access(*p, A, false), 0);  // P's fault finds the migrated folio in the swap cache
  EXPECT_EQ(p->pgd.get(A).pfn(), c->pgd.get(A).pfn());
}

}  // namespace
}  // namespace rmapkit::mm
