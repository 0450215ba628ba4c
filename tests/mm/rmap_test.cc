// The reverse map's entry points on hand-built states: rmap_walk, folio_referenced,
// try_to_unmap and folio_mkclean, plus the anon_vma bookkeeping of fork and its reuse.
#include <set>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "rmapkit/mm/machine.h"
#include "support/mm_fixture.h"

namespace rmapkit::mm {
namespace {

using testing::A;
using testing::B;

class Rmap : public testing::machine_test {
 protected:
  folio& folio_at(mm_struct& mm, vaddr_t a) { return m.folio_of(mm.pgd.get(a).pfn()); }

  /// (mm name, address) of every VMA a walk of @f visits.
  std::set<std::pair<std::string, std::uint64_t>> walk(folio& f) {
    std::set<std::pair<std::string, std::uint64_t>> seen;
    rmap_walk_control rwc;
    rwc.rmap_one = [&](folio&, vm_area_struct& vma, vaddr_t addr) {
      seen.emplace(vma.vm_mm->name, addr.value);
      return true;
    };
    m.rmap_walk(f, rwc);
    return seen;
  }
};

TEST_F(Rmap, WalkOfAForkedAnonPageVisitsEverySharerAtItsAddress) {
  auto* p = m.mm_alloc("P");
  ASSERT_EQ(m.do_mmap(*p, A, 8, PROT_READ_ | PROT_WRITE_, false, nullptr, pgoff_t{}), 0);
  ASSERT_EQ(m.access(*p, page_addr(A, 3), true, 42), 0);
  auto* c1 = m.dup_mm(*p, "C1");
  auto* c2 = m.dup_mm(*c1, "C2");
  // C2 moves the page elsewhere: vm_pgoff moves with it, so vma_address() still finds it.
  ASSERT_EQ(m.do_mremap_move(*c2, A, 8, B), 0);
  folio& f = folio_at(*p, page_addr(A, 3));
  EXPECT_EQ(f.mapcount, 3);
  EXPECT_EQ(walk(f), (std::set<std::pair<std::string, std::uint64_t>>{
                         {"P", page_addr(A, 3).value}, {"C1", page_addr(A, 3).value}, {"C2", page_addr(B, 3).value}}));
}

TEST_F(Rmap, ReusedCowPageMovesToItsOwnAnonVmaAndNarrowsTheWalk) {
  auto* p = m.mm_alloc("P");
  ASSERT_EQ(m.do_mmap(*p, A, 1, PROT_READ_ | PROT_WRITE_, false, nullptr, pgoff_t{}), 0);
  ASSERT_EQ(m.access(*p, A, true, 1), 0);
  auto* c = m.dup_mm(*p, "C");
  ASSERT_EQ(m.access(*p, A, true, 2), 0);  // P copies; C's page is now mapped once
  folio& f = folio_at(*c, A);
  EXPECT_FALSE(f.test(folio_flag::anon_exclusive));
  EXPECT_EQ(f.anon(), machine::find_vma(*p, A)->anon_vma);  // still P's anon_vma: a walk visits P too
  EXPECT_EQ(walk(f).size(), 2U) << "P's VMA is visited although P no longer maps the page";
  ASSERT_EQ(m.access(*c, A, true, 3), 0);  // reuse in place
  EXPECT_EQ(&folio_at(*c, A), &f);
  EXPECT_TRUE(f.test(folio_flag::anon_exclusive));
  EXPECT_EQ(f.anon(), machine::find_vma(*c, A)->anon_vma);  // folio_move_anon_rmap()
  m.stats() = {};
  walk(f);
  EXPECT_EQ(m.stats().vmas_visited, 1U);  // only C's VMA is in C's anon_vma tree
}

TEST_F(Rmap, ForkReusesAnAncestorsIdleAnonVmaInsteadOfGrowingTheChain) {
  auto* p = m.mm_alloc("P");
  ASSERT_EQ(m.do_mmap(*p, A, 1, PROT_READ_ | PROT_WRITE_, false, nullptr, pgoff_t{}), 0);
  ASSERT_EQ(m.access(*p, A, true, 1), 0);
  auto* c = m.dup_mm(*p, "C");
  auto* c_av = machine::find_vma(*c, A)->anon_vma;
  auto* g = m.dup_mm(*c, "G");
  m.exit_mm(c);  // C's anon_vma now has no VMA and one child (G's)
  EXPECT_EQ(c_av->num_active_vmas, 0U);
  EXPECT_EQ(c_av->num_children, 1U);
  auto* h = m.dup_mm(*g, "H");
  EXPECT_EQ(machine::find_vma(*h, A)->anon_vma, c_av) << "H should reuse C's idle anon_vma";
  EXPECT_EQ(machine::find_vma(*h, A)->anon_vma_chain.size(), 3U);  // P's, C's, G's
}

// The reuse rule's other half: an idle anon_vma with two children is not reused, or a
// walk from it would visit both children's families as one (num_children < 2).
TEST_F(Rmap, ForkDoesNotReuseAnIdleAnonVmaWithTwoChildren) {
  auto* p = m.mm_alloc("P");
  ASSERT_EQ(m.do_mmap(*p, A, 1, PROT_READ_ | PROT_WRITE_, false, nullptr, pgoff_t{}), 0);
  ASSERT_EQ(m.access(*p, A, true, 1), 0);
  auto* c = m.dup_mm(*p, "C");
  auto* c_av = machine::find_vma(*c, A)->anon_vma;
  auto* g1 = m.dup_mm(*c, "G1");
  m.dup_mm(*c, "G2");
  m.exit_mm(c);  // C's anon_vma now has no VMA and two children (G1's and G2's)
  ASSERT_EQ(c_av->num_active_vmas, 0U);
  ASSERT_EQ(c_av->num_children, 2U);
  auto* g1_av = machine::find_vma(*g1, A)->anon_vma;
  auto* h = m.dup_mm(*g1, "H");
  auto* h_av = machine::find_vma(*h, A)->anon_vma;
  EXPECT_NE(h_av, c_av) << "C's anon_vma has two children: H must not reuse it";
  EXPECT_EQ(h_av->parent, g1_av) << "H gets a new anon_vma, a child of G1's";
  EXPECT_EQ(machine::find_vma(*h, A)->anon_vma_chain.size(), 4U);  // P's, C's, G1's, H's
  EXPECT_EQ(c_av->num_children, 2U);
}

// vma_address() at both ends of a VMA: its first and last page are inside, the pages just
// outside are not (an off-by-one at vm_end would hand a walk the next VMA's first page).
TEST_F(Rmap, VmaAddressAtTheEdgesOfAVma) {
  auto* f0 = m.memfd_create("F", 16, 1);
  files.push_back(f0);
  auto* p = m.mm_alloc("P");
  ASSERT_EQ(m.do_mmap(*p, A, 4, PROT_READ_, true, f0, pgoff_t{8}), 0);
  const auto& v = *machine::find_vma(*p, A);
  ASSERT_EQ(v.vm_pgoff.value, 8U);
  EXPECT_EQ(machine::vma_address(v, pgoff_t{7}), std::nullopt);
  EXPECT_EQ(machine::vma_address(v, pgoff_t{8}), A);
  EXPECT_EQ(machine::vma_address(v, pgoff_t{11}), page_addr(A, 3));
  EXPECT_EQ(machine::vma_address(v, pgoff_t{12}), std::nullopt) << "the page at vm_end is not in the VMA";
}

// The same edge in a walk: under linux-2.6.34 (AVCs on a list, no interval tree) a walk
// offers every VMA of the anon_vma to vma_address(), which alone skips the lower half of
// a split region for a page of the upper half.
TEST(RmapWalk, VmaAddressSkipsTheVmaThatEndsJustBeforeThePage) {
  machine lists("linux-2.6.34");
  auto* p = lists.mm_alloc("P");
  ASSERT_EQ(lists.do_mmap(*p, A, 2, PROT_READ_ | PROT_WRITE_, false, nullptr, pgoff_t{}), 0);
  ASSERT_EQ(lists.access(*p, page_addr(A, 1), true, 1), 0);
  ASSERT_EQ(lists.do_mprotect(*p, page_addr(A, 1), 1, PROT_READ_), 0);  // [A, A+1) and [A+1, A+2)
  const auto* upper = machine::find_vma(*p, page_addr(A, 1));
  std::vector<std::pair<const vm_area_struct*, std::uint64_t>> offered;
  rmap_walk_control rwc;
  rwc.rmap_one = [&](folio&, vm_area_struct& vma, vaddr_t addr) {
    offered.emplace_back(&vma, addr.value);
    return true;
  };
  lists.rmap_walk(lists.folio_of(p->pgd.get(page_addr(A, 1)).pfn()), rwc);
  EXPECT_EQ(offered, (std::vector<std::pair<const vm_area_struct*, std::uint64_t>>{{upper, page_addr(A, 1).value}}));
  EXPECT_EQ(lists.check_invariants(), "");
  lists.exit_mm(p);
  EXPECT_EQ(lists.live().total(), 0U);
}

TEST_F(Rmap, FolioReferencedCountsVmasClearsYoungAndStopsAtMlock) {
  auto* f0 = m.memfd_create("F", 4, 1);
  files.push_back(f0);
  auto* p = m.mm_alloc("P");
  auto* q = m.mm_alloc("Q");
  ASSERT_EQ(m.do_mmap(*p, A, 4, PROT_READ_, true, f0, pgoff_t{}), 0);
  ASSERT_EQ(m.do_mmap(*q, B, 4, PROT_READ_, true, f0, pgoff_t{}), 0);
  ASSERT_EQ(m.access(*p, A, false), 0);
  ASSERT_EQ(m.access(*q, B, false), 0);
  folio& f = folio_at(*p, A);
  vm_flags_t flags;
  EXPECT_EQ(m.folio_referenced(f, &flags), 2);
  EXPECT_FALSE(flags.has(vm_flag::locked));
  EXPECT_EQ(m.folio_referenced(f), 0) << "young bits were cleared by the first walk";
  ASSERT_EQ(m.access(*q, B, false), 0);
  EXPECT_EQ(m.folio_referenced(f), 1);
  ASSERT_EQ(m.do_mlock(*q, B, 4, true), 0);
  EXPECT_EQ(m.folio_referenced(f, &flags), 0);
  EXPECT_TRUE(flags.has(vm_flag::locked));
}

TEST_F(Rmap, TryToUnmapPutsOneSwapEntryInEverySharer) {
  auto* p = m.mm_alloc("P");
  ASSERT_EQ(m.do_mmap(*p, A, 2, PROT_READ_ | PROT_WRITE_, false, nullptr, pgoff_t{}), 0);
  ASSERT_EQ(m.access(*p, A, true, 7), 0);
  auto* c = m.dup_mm(*p, "C");
  folio& f = folio_at(*p, A);
  EXPECT_FALSE(m.try_to_unmap(f)) << "an anon folio must be in the swap cache first";
  EXPECT_EQ(f.mapcount, 2);
  ASSERT_TRUE(m.add_to_swap(f));
  EXPECT_TRUE(m.try_to_unmap(f));
  pte_t pp = p->pgd.get(A), cp = c->pgd.get(A);
  ASSERT_TRUE(pp.is_swap());
  EXPECT_EQ(pp.swap_entry(), cp.swap_entry());
  EXPECT_EQ(m.swap_count(pp.swap_entry()), 2U);
  // The child swaps it back in: the same frame, mapped by C alone, still in the swap cache.
  ASSERT_EQ(m.access(*c, A, false), 0);
  EXPECT_EQ(&folio_at(*c, A), &f);
  EXPECT_TRUE(p->pgd.get(A).is_swap());
  EXPECT_TRUE(f.test(folio_flag::swapcache));
}

TEST_F(Rmap, TryToUnmapStopsAtAnMlockedMapping) {
  auto* f0 = m.memfd_create("F", 1, 1);
  files.push_back(f0);
  auto* p = m.mm_alloc("P");
  auto* q = m.mm_alloc("Q");
  ASSERT_EQ(m.do_mmap(*p, A, 1, PROT_READ_, true, f0, pgoff_t{}), 0);
  ASSERT_EQ(m.do_mmap(*q, B, 1, PROT_READ_, true, f0, pgoff_t{}), 0);
  ASSERT_EQ(m.do_mlock(*q, B, 1, true), 0);
  ASSERT_EQ(m.access(*p, A, false), 0);
  folio& f = folio_at(*p, A);
  EXPECT_FALSE(m.try_to_unmap(f));
  EXPECT_TRUE(q->pgd.get(B).present());
}

TEST_F(Rmap, FolioMkcleanCleansSharedMappingsOnly) {
  auto* f0 = m.memfd_create("F", 2, 1);
  files.push_back(f0);
  auto* p = m.mm_alloc("P");
  ASSERT_EQ(m.do_mmap(*p, A, 2, PROT_READ_ | PROT_WRITE_, true, f0, pgoff_t{}), 0);
  ASSERT_EQ(m.do_mmap(*p, B, 2, PROT_READ_ | PROT_WRITE_, false, f0, pgoff_t{}), 0);
  ASSERT_EQ(m.access(*p, A, true, 5), 0);  // dirty, writable, shared
  ASSERT_EQ(m.access(*p, B, false), 0);    // the same page-cache page, mapped privately
  folio& f = folio_at(*p, A);
  ASSERT_EQ(&folio_at(*p, B), &f);
  EXPECT_EQ(m.folio_mkclean(f), 1);
  EXPECT_FALSE(p->pgd.get(A).write());
  EXPECT_FALSE(p->pgd.get(A).dirty());
  EXPECT_EQ(m.folio_mkclean(f), 0);
  // The next write faults and makes it writable and dirty again (wp_page_shared()).
  ASSERT_EQ(m.access(*p, A, true, 6), 0);
  EXPECT_TRUE(p->pgd.get(A).write());
  EXPECT_EQ(&folio_at(*p, A), &f);
}

TEST_F(Rmap, VmaAddressHonoursPgoffAfterSplit) {
  auto* p = m.mm_alloc("P");
  ASSERT_EQ(m.do_mmap(*p, A, 10, PROT_READ_ | PROT_WRITE_, false, nullptr, pgoff_t{}), 0);
  ASSERT_EQ(m.access(*p, page_addr(A, 6), true, 1), 0);
  auto* c = m.dup_mm(*p, "C");
  ASSERT_EQ(m.do_mprotect(*c, page_addr(A, 4), 6, PROT_READ_), 0);  // the child's VMA splits
  auto* upper = machine::find_vma(*c, page_addr(A, 6));
  EXPECT_EQ(upper->vm_start, page_addr(A, 4));
  folio& f = folio_at(*p, page_addr(A, 6));
  // Six pages from vm_start in P, two in C's upper VMA: vm_pgoff absorbs the difference.
  EXPECT_EQ(machine::vma_address(*upper, f.index), page_addr(A, 6));
  EXPECT_EQ(machine::vma_address(*machine::find_vma(*p, A), f.index), page_addr(A, 6));
  EXPECT_EQ(machine::vma_address(*machine::find_vma(*c, A), f.index),
            std::nullopt);  // the lower half does not cover it
}

}  // namespace
}  // namespace rmapkit::mm
