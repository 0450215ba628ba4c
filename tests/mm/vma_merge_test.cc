// The VMA merge rules in isolation, as the kernel's tools/testing/vma tests them, through
// the machine's system calls on a fresh machine. A merge is tried when a new VMA is mapped
// (vma_merge_new_range()), when the flags of a range change (vma_modify_flags(): mprotect,
// madvise, mlock) and when a VMA moves (mremap). Tests that need neighbours apart map them
// with different flags, then give them the same flags and look at what is left.
#include <vector>

#include "../support/mm_fixture.h"

namespace rmapkit::mm::testing {
namespace {

constexpr int RW = PROT_READ_ | PROT_WRITE_;

vaddr_t page(vaddr_t base, std::uint64_t n) { return page_addr(base, n); }

class VmaMerge : public machine_test {
 protected:
  /// The VMAs of @mm in address order.
  static std::vector<vm_area_struct*> vmas(const mm_struct& mm) {
    std::vector<vm_area_struct*> out;
    for (const auto& [start, v] : mm.mm_mt) out.push_back(v);
    return out;
  }
  static vm_area_struct* vma_at(const mm_struct& mm, vaddr_t a) { return machine::find_vma(mm, a); }
  /// Private anonymous memory: @pages at @at, read-write.
  void map_anon(mm_struct& mm, vaddr_t at, std::uint64_t pages, int prot = RW) {
    ASSERT_EQ(m.do_mmap(mm, at, pages, prot, false, nullptr, pgoff_t{}), 0);
  }
  void write(mm_struct& mm, vaddr_t a) { ASSERT_EQ(m.access(mm, a, true, 1), 0); }
  void dontfork(mm_struct& mm, vaddr_t a, std::uint64_t pages) {
    ASSERT_EQ(m.do_madvise(mm, a, pages, madv::dontfork), 0);
  }
};

TEST_F(VmaMerge, AdjacentAnonymousMappingsMergeAtMmap) {
  auto* p = m.mm_alloc("P");
  map_anon(*p, page(A, 4), 4);
  map_anon(*p, A, 4);           // joins its next neighbour
  map_anon(*p, page(A, 8), 4);  // and this one its previous
  auto v = vmas(*p);
  ASSERT_EQ(v.size(), 1U);
  EXPECT_EQ(v[0]->vm_start, A);
  EXPECT_EQ(v[0]->vm_end, page(A, 12));
  EXPECT_EQ(v[0]->vm_pgoff.value, A.value >> PAGE_SHIFT) << "an anonymous VMA's pgoff is its address";
}

/// The anon_vma_chains the machine's design has allocated so far (what the kernel's kmem
/// tracepoints count): a merge that moves a boundary allocates none.
std::uint64_t avcs_allocated(const machine& m) {
  const auto objs = m.anon_rmap_design().objects();
  const auto* avcs = find_object(objs, "anon_vma_chain");
  return avcs ? avcs->allocated : 0;
}

TEST_F(VmaMerge, MprotectOfAHeadThatJoinsPrevMovesTheBoundaryWithoutCloningAChain) {
  auto* p = m.mm_alloc("P");
  map_anon(*p, A, 8);
  write(*p, A);
  write(*p, page(A, 5));
  ASSERT_EQ(m.do_mprotect(*p, A, 4, PROT_READ_), 0);  // a split: [0, 4) r, [4, 8) rw
  const auto before = avcs_allocated(m);
  ASSERT_EQ(m.do_mprotect(*p, page(A, 4), 2, PROT_READ_), 0);  // [4, 6) joins [0, 4)
  EXPECT_EQ(avcs_allocated(m), before) << "vma_merge_existing_range(): no VMA split off, no chain cloned";
  auto v = vmas(*p);
  ASSERT_EQ(v.size(), 2U);
  EXPECT_EQ(v[0]->vm_end, page(A, 6));
  EXPECT_EQ(v[1]->vm_start, page(A, 6));
  EXPECT_EQ(v[1]->vm_pgoff.value, page(A, 6).value >> PAGE_SHIFT);
  EXPECT_EQ(m.check_invariants(), "") << "page 5 is found through the VMA that now holds it";

  ASSERT_EQ(m.do_mprotect(*p, page(A, 7), 1, PROT_NONE_), 0);  // a tail that joins nothing: a split
  EXPECT_EQ(avcs_allocated(m), before + 1);
}

TEST_F(VmaMerge, MprotectOfATailThatJoinsNextMovesTheBoundaryDown) {
  auto* p = m.mm_alloc("P");
  map_anon(*p, A, 8);
  write(*p, A);
  ASSERT_EQ(m.do_mprotect(*p, page(A, 4), 4, PROT_READ_), 0);
  const auto before = avcs_allocated(m);
  ASSERT_EQ(m.do_mprotect(*p, page(A, 2), 2, PROT_READ_), 0);  // [2, 4) joins [4, 8)
  EXPECT_EQ(avcs_allocated(m), before);
  auto v = vmas(*p);
  ASSERT_EQ(v.size(), 2U);
  EXPECT_EQ(v[0]->vm_end, page(A, 2));
  EXPECT_EQ(v[1]->vm_start, page(A, 2));
  EXPECT_EQ(v[1]->vm_pgoff.value, page(A, 2).value >> PAGE_SHIFT);
  EXPECT_EQ(m.check_invariants(), "");
}

TEST_F(VmaMerge, AMappingThatJoinsOnlyItsNextNeighbourGrowsItDownWithoutCloningAChain) {
  auto* p = m.mm_alloc("P");
  map_anon(*p, page(A, 4), 4);
  write(*p, page(A, 4));
  anon_vma* av = vma_at(*p, page(A, 4))->anon_vma;
  const auto before = avcs_allocated(m);
  map_anon(*p, A, 4);  // vma_merge_new_range(): next grows down over the new range
  EXPECT_EQ(avcs_allocated(m), before);
  auto v = vmas(*p);
  ASSERT_EQ(v.size(), 1U);
  EXPECT_EQ(v[0]->vm_start, A);
  EXPECT_EQ(v[0]->anon_vma, av);
  EXPECT_EQ(m.check_invariants(), "");
}

TEST_F(VmaMerge, AMappingThatFillsAHoleJoinsBothNeighbours) {
  auto* p = m.mm_alloc("P");
  map_anon(*p, A, 12);
  write(*p, A);
  anon_vma* av = vma_at(*p, A)->anon_vma;
  ASSERT_EQ(m.do_munmap(*p, page(A, 4), 4), 0);
  ASSERT_EQ(vmas(*p).size(), 2U);
  map_anon(*p, page(A, 4), 4);  // both neighbours have the same anon_vma: all three are one
  auto v = vmas(*p);
  ASSERT_EQ(v.size(), 1U);
  EXPECT_EQ(v[0]->vm_end, page(A, 12));
  EXPECT_EQ(v[0]->anon_vma, av);
}

TEST_F(VmaMerge, AdjacentAnonymousMappingsMergeOnceTheirFlagsAreEqual) {
  auto* p = m.mm_alloc("P");
  map_anon(*p, A, 4);
  map_anon(*p, page(A, 4), 4, PROT_READ_);
  ASSERT_EQ(vmas(*p).size(), 2U) << "VM_WRITE and VM_ACCOUNT differ";
  dontfork(*p, A, 8);  // both get VM_DONTCOPY; the flags still differ
  ASSERT_EQ(vmas(*p).size(), 2U);
  ASSERT_EQ(m.do_mprotect(*p, page(A, 4), 4, RW), 0);  // now equal: the second merges into the first
  ASSERT_EQ(vmas(*p).size(), 1U);
  EXPECT_EQ(vmas(*p)[0]->vm_start, A);
  EXPECT_EQ(vmas(*p)[0]->vm_end, page(A, 8));
  EXPECT_TRUE(vmas(*p)[0]->vm_flags.has(vm_flag::dontcopy));
}

TEST_F(VmaMerge, AdjacentMappingsWithDifferentFlagsStayApart) {
  auto* p = m.mm_alloc("P");
  map_anon(*p, A, 4);
  map_anon(*p, page(A, 4), 4);
  dontfork(*p, A, 4);  // a merge is tried, but only the first has VM_DONTCOPY
  EXPECT_EQ(vmas(*p).size(), 2U);
}

TEST_F(VmaMerge, AdjacentMappingsWithDifferentProtectionStayApart) {
  auto* p = m.mm_alloc("P");
  map_anon(*p, A, 4);
  map_anon(*p, page(A, 4), 4, PROT_READ_);
  dontfork(*p, A, 8);  // equal but for VM_WRITE (and VM_ACCOUNT, which goes with it)
  EXPECT_EQ(vmas(*p).size(), 2U);
}

TEST_F(VmaMerge, AdjacentMappingsOfOneFileMergeOnlyWhenTheirOffsetsFollowOn) {
  auto* f = m.memfd_create("F", 16, 1);
  files.push_back(f);
  auto* p = m.mm_alloc("P");
  ASSERT_EQ(m.do_mmap(*p, A, 4, RW, true, f, pgoff_t{0}), 0);
  ASSERT_EQ(m.do_mmap(*p, page(A, 4), 4, RW, true, f, pgoff_t{4}), 0);
  ASSERT_EQ(m.do_mmap(*p, page(A, 8), 4, RW, true, f, pgoff_t{12}), 0);  // file pages 8-11 skipped
  dontfork(*p, A, 12);
  auto v = vmas(*p);
  ASSERT_EQ(v.size(), 2U);
  EXPECT_EQ(v[0]->vm_end, page(A, 8)) << "pgoff 0 and 4 follow on";
  EXPECT_EQ(v[1]->vm_pgoff.value, 12U);
}

TEST_F(VmaMerge, AdjacentMappingsOfDifferentFilesOrOfAFileAndAnonymousMemoryStayApart) {
  auto* f = m.memfd_create("F", 8, 1);
  auto* g = m.memfd_create("G", 8, 2);
  files.push_back(f);
  files.push_back(g);
  auto* p = m.mm_alloc("P");
  ASSERT_EQ(m.do_mmap(*p, A, 4, RW, false, f, pgoff_t{0}), 0);
  ASSERT_EQ(m.do_mmap(*p, page(A, 4), 4, RW, false, g, pgoff_t{4}), 0);
  // A private anonymous VMA's pgoff is its address in pages: page(A, 8) >> PAGE_SHIFT.
  map_anon(*p, page(A, 8), 4);
  dontfork(*p, A, 12);
  EXPECT_EQ(vmas(*p).size(), 3U);
}

TEST_F(VmaMerge, MprotectOfAMiddleRangeSplitsTheVmaInThreeAndMprotectBackMergesThem) {
  auto* p = m.mm_alloc("P");
  map_anon(*p, A, 12);
  write(*p, A);  // one anon_vma for the whole VMA, before the split
  anon_vma* av = vma_at(*p, A)->anon_vma;
  ASSERT_EQ(m.do_mprotect(*p, page(A, 4), 4, PROT_READ_), 0);
  auto v = vmas(*p);
  ASSERT_EQ(v.size(), 3U);
  EXPECT_EQ(v[0]->vm_end, page(A, 4));
  EXPECT_EQ(v[1]->vm_end, page(A, 8));
  EXPECT_FALSE(v[1]->vm_flags.has(vm_flag::write));
  for (auto* vma : v) EXPECT_EQ(vma->anon_vma, av) << "a split keeps the anon_vma on both sides";

  ASSERT_EQ(m.do_mprotect(*p, page(A, 4), 4, RW), 0);
  v = vmas(*p);
  ASSERT_EQ(v.size(), 1U);
  EXPECT_EQ(v[0]->vm_start, A);
  EXPECT_EQ(v[0]->vm_end, page(A, 12));
  EXPECT_EQ(v[0]->anon_vma, av);
}

TEST_F(VmaMerge, FaultedNeighboursWithDifferentAnonVmasStayApart) {
  auto* p = m.mm_alloc("P");
  map_anon(*p, A, 4);
  map_anon(*p, page(A, 4), 4);
  dontfork(*p, page(A, 4), 4);  // incompatible while they fault: each gets its own anon_vma
  write(*p, A);
  write(*p, page(A, 4));
  ASSERT_NE(vma_at(*p, A)->anon_vma, vma_at(*p, page(A, 4))->anon_vma);
  dontfork(*p, A, 4);  // the flags are equal now; the anon_vmas still differ
  EXPECT_EQ(vmas(*p).size(), 2U);
}

TEST_F(VmaMerge, AFaultNextToACompatibleFaultedNeighbourReusesItsAnonVma) {
  auto* p = m.mm_alloc("P");
  map_anon(*p, A, 4);
  map_anon(*p, page(A, 4), 4, RW | PROT_EXEC_);  // apart, but compatible: only an access bit differs
  ASSERT_EQ(vmas(*p).size(), 2U);
  write(*p, A);
  write(*p, page(A, 4));  // find_mergeable_anon_vma(): the neighbour's, not a new one
  EXPECT_EQ(vma_at(*p, page(A, 4))->anon_vma, vma_at(*p, A)->anon_vma);
  ASSERT_EQ(m.do_mprotect(*p, page(A, 4), 4, RW), 0);
  EXPECT_EQ(vmas(*p).size(), 1U) << "one anon_vma: nothing keeps them apart";
}

TEST_F(VmaMerge, AnUnfaultedVmaMergesWithAFaultedNeighbourAndAdoptsItsAnonVma) {
  auto* p = m.mm_alloc("P");
  map_anon(*p, A, 4);
  map_anon(*p, page(A, 4), 4);
  dontfork(*p, page(A, 4), 4);
  write(*p, page(A, 4));  // only the second VMA has an anon_vma
  anon_vma* av = vma_at(*p, page(A, 4))->anon_vma;
  ASSERT_EQ(vma_at(*p, A)->anon_vma, nullptr);
  dontfork(*p, A, 4);  // the unfaulted first VMA absorbs the faulted second (dup_anon_vma())
  auto v = vmas(*p);
  ASSERT_EQ(v.size(), 1U);
  EXPECT_EQ(v[0]->anon_vma, av);
  write(*p, A);  // a new page of the formerly unfaulted part goes to that anon_vma
  EXPECT_EQ(m.folio_of(p->pgd.get(A).pfn()).anon(), av);
}

// After fork, a child VMA with pages has a chain of two AVCs (its own anon_vma and the
// parent's): can_merge() refuses to let it share its anon_vma with a neighbour that has
// none, since the merged VMA's chain would be wrong for the neighbour's half. The parent,
// whose chain is a single AVC, merges the same two VMAs. The kernel has the same rule
// (vma_is_fork_child() in mm/vma.c, formerly vma_had_uncowed_parents()), but no corpus
// scenario shows it: with the rule taken out of can_merge(), every report of
// tests/scenarios stays the same. The nearest are 21 (the parent's three VMAs, one
// anon_vma, merge back) and 35 (the child keeps the VMAs it was given); a scenario that
// asks a forked child to merge a faulted VMA with an unfaulted neighbour would pin this
// rule to the kernel.
TEST_F(VmaMerge, AForkedChildsFaultedVmaDoesNotMergeWithAnUnfaultedNeighbour) {
  auto* p = m.mm_alloc("P");
  map_anon(*p, A, 4);
  map_anon(*p, page(A, 4), 4, PROT_READ_);  // apart until its protection matches
  write(*p, A);                             // the second VMA stays unfaulted: no anon_vma
  auto* c = m.dup_mm(*p, "C");
  ASSERT_NE(vma_at(*c, A)->anon_vma, nullptr);
  ASSERT_FALSE(vma_at(*c, A)->anon_vma_chain.singular()) << "the child's chain holds the parent's anon_vma";
  ASSERT_EQ(vma_at(*c, page(A, 4))->anon_vma, nullptr);

  ASSERT_EQ(m.do_mprotect(*c, page(A, 4), 4, RW), 0);
  EXPECT_EQ(vmas(*c).size(), 2U) << "the child's VMA has uncowed parents";
  ASSERT_EQ(m.do_mprotect(*p, page(A, 4), 4, RW), 0);
  EXPECT_EQ(vmas(*p).size(), 1U) << "the parent's chain is a single AVC";
}

// The same rule at mmap (vma_merge_new_range()): a new mapping next to a forked child's
// faulted VMA stays a VMA of its own in the child, and joins the parent's.
TEST_F(VmaMerge, ANewMappingNextToAForkedChildsFaultedVmaStaysApart) {
  auto* p = m.mm_alloc("P");
  map_anon(*p, A, 4);
  write(*p, A);
  auto* c = m.dup_mm(*p, "C");
  map_anon(*c, page(A, 4), 4);
  EXPECT_EQ(vmas(*c).size(), 2U);
  map_anon(*p, page(A, 4), 4);
  EXPECT_EQ(vmas(*p).size(), 1U);
}

TEST_F(VmaMerge, ExecutableMemoryStaysApartFromItsNonExecutableNeighbour) {
  auto* p = m.mm_alloc("P");
  map_anon(*p, A, 4, PROT_READ_);
  map_anon(*p, page(A, 4), 4, PROT_READ_ | PROT_EXEC_);
  ASSERT_EQ(vmas(*p).size(), 2U);
  EXPECT_EQ(maps_perms(*vmas(*p)[1]), "r-xp");
  ASSERT_EQ(m.do_mprotect(*p, page(A, 4), 4, PROT_READ_), 0);  // exec off: one VMA
  EXPECT_EQ(vmas(*p).size(), 1U);
}

// mremap keeps an anonymous VMA's pgoff, so a moved VMA's pgoff is no longer its address,
// and a new mapping beside it does not follow on.
TEST_F(VmaMerge, ANewMappingNextToAMovedAnonymousVmaStaysApart) {
  auto* p = m.mm_alloc("P");
  map_anon(*p, A, 4);
  write(*p, A);
  const vaddr_t to = page(A, 1024);
  ASSERT_EQ(m.do_mremap_move(*p, A, 4, to), 0);
  map_anon(*p, page(to, 4), 4);
  EXPECT_EQ(vmas(*p).size(), 2U);
}

// MAP_FIXED over mapped pages: they are unmapped (their frames freed), and the new VMA
// joins what is left on both sides.
TEST_F(VmaMerge, MapFixedReplacesTheOldPagesAndJoinsTheNeighbours) {
  auto* p = m.mm_alloc("P");
  map_anon(*p, A, 12);
  for (std::uint64_t i = 0; i < 12; ++i) write(*p, page(A, i));
  ASSERT_EQ(m.anon_footprint().frames, 12U);
  ASSERT_EQ(m.do_mmap(*p, page(A, 4), 4, RW, false, nullptr, pgoff_t{}, {.how = map_fixed::replace}), 0);
  EXPECT_EQ(m.anon_footprint().frames, 8U);
  EXPECT_FALSE(p->pgd.get(page(A, 5)).present());
  EXPECT_TRUE(p->pgd.get(page(A, 3)).present());
  auto v = vmas(*p);
  ASSERT_EQ(v.size(), 1U);
  EXPECT_EQ(v[0]->vm_end, page(A, 12));
  EXPECT_EQ(m.do_mmap(*p, page(A, 4), 4, RW, false, nullptr, pgoff_t{}), -EEXIST) << "MAP_FIXED_NOREPLACE";
}

}  // namespace
}  // namespace rmapkit::mm::testing
