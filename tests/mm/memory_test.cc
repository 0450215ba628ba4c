// Faults and what fills page tables besides them: at the end of a file (mm/memory.cc) a
// mapping may reach past the file's end — an mremap grows it, a shared anonymous mapping
// grows past its shmem object — but no page lies there, so a fault there is SIGBUS and
// fault-around stops at the end; MADV_WILLNEED reads swap back without mapping it; and
// mlockall() locks and faults in what is mapped now or later (mm/madvise.cc, mm/mlock.cc).
#include <gtest/gtest.h>

#include "rmapkit/mm/machine.h"
#include "support/mm_fixture.h"

namespace rmapkit::mm {
namespace {

using testing::A;
using testing::B;

class FileEnd : public testing::machine_test {};

TEST_F(FileEnd, AFaultPastTheEndOfAFileIsRefusedAndFaultAroundStopsThere) {
  auto* p = m.mm_alloc("P");
  auto* f = m.memfd_create("F", 20, 1);
  files.push_back(f);
  ASSERT_EQ(m.do_mmap(*p, A, 16, PROT_READ_, true, f, pgoff_t{4}), 0);  // file pages 4..19
  ASSERT_EQ(m.do_mremap_resize(*p, A, 16, 24), 0);                      // now 4..27
  EXPECT_EQ(m.access(*p, page_addr(A, 15), false), 0) << "file page 19, the last";
  EXPECT_EQ(m.access(*p, page_addr(A, 16), false), -EFAULT) << "file page 20: past the end";
  EXPECT_EQ(m.access(*p, page_addr(A, 20), true), -EFAULT) << "a write faults there too";
  for (std::uint64_t i = 16; i < 24; ++i) EXPECT_TRUE(p->pgd.get(page_addr(A, i)).none()) << "page " << i;
}

TEST_F(FileEnd, APrivateCopyPastTheEndIsRefusedToo) {
  auto* p = m.mm_alloc("P");
  auto* f = m.memfd_create("F", 2, 1);
  files.push_back(f);
  ASSERT_EQ(m.do_mmap(*p, A, 2, PROT_READ_ | PROT_WRITE_, false, f, pgoff_t{}), 0);
  ASSERT_EQ(m.do_mremap_resize(*p, A, 2, 4), 0);
  EXPECT_EQ(m.access(*p, page_addr(A, 1), true, 7), 0);
  EXPECT_EQ(m.access(*p, page_addr(A, 2), true, 7), -EFAULT);
}

class Willneed : public testing::machine_test {
 protected:
  std::uint64_t event(const char* name) {
    const auto v = m.vmstat();
    auto it = v.find(name);
    return it == v.end() ? 0 : it->second;
  }
};

TEST_F(Willneed, SwappedPagesComeBackIntoTheSwapCacheAndTheFaultFindsThemThere) {
  auto* p = m.mm_alloc("P");
  ASSERT_EQ(m.do_mmap(*p, A, 2, PROT_READ_ | PROT_WRITE_, false, nullptr, pgoff_t{}), 0);
  ASSERT_EQ(m.access(*p, A, true, 5), 0);
  ASSERT_EQ(m.do_madvise(*p, A, 2, madv::pageout), 0);
  m.shrink_all();  // the written page leaves the swap cache
  ASSERT_TRUE(p->pgd.get(A).is_swap());
  const auto swapins = event("pswpin"), majors = event("pgmajfault");
  ASSERT_EQ(m.do_madvise(*p, A, 2, madv::willneed), 0);
  EXPECT_TRUE(p->pgd.get(A).is_swap()) << "willneed maps nothing";
  EXPECT_EQ(event("pswpin"), swapins + 1) << "the page was read back";
  ASSERT_EQ(m.access(*p, A, false), 0);
  EXPECT_EQ(event("pgmajfault"), majors) << "the fault found it in the swap cache: a minor fault";
  EXPECT_EQ(m.folio_of(p->pgd.get(A).pfn()).content, 5U);
}

class Mlockall : public testing::machine_test {};

TEST_F(Mlockall, FutureMappingsAreLockedAndFaultedInButAForkChildsAreNot) {
  auto* p = m.mm_alloc("P");
  ASSERT_EQ(m.do_mmap(*p, A, 2, PROT_READ_ | PROT_WRITE_, false, nullptr, pgoff_t{}), 0);
  m.do_mlockall(*p, false, true);  // MCL_FUTURE alone: what is mapped stays as it is
  EXPECT_FALSE(machine::find_vma(*p, A)->vm_flags.has(vm_flag::locked));
  EXPECT_TRUE(p->pgd.get(A).none());
  ASSERT_EQ(m.do_mmap(*p, B, 2, PROT_READ_ | PROT_WRITE_, false, nullptr, pgoff_t{}), 0);
  EXPECT_TRUE(machine::find_vma(*p, B)->vm_flags.has(vm_flag::locked));
  EXPECT_TRUE(p->pgd.get(page_addr(B, 1)).present()) << "mm_populate() of the new mapping";
  EXPECT_TRUE(m.folio_of(p->pgd.get(B).pfn()).test(folio_flag::mlocked));
  auto* c = m.dup_mm(*p, "C");
  ASSERT_EQ(m.do_mmap(*c, page_addr(B, 8), 1, PROT_READ_ | PROT_WRITE_, false, nullptr, pgoff_t{}), 0);
  EXPECT_FALSE(machine::find_vma(*c, page_addr(B, 8))->vm_flags.has(vm_flag::locked)) << "def_flags are not inherited";
  m.do_mlockall(*p, true, false);  // MCL_CURRENT alone: every VMA now, none later
  EXPECT_TRUE(machine::find_vma(*p, A)->vm_flags.has(vm_flag::locked));
  EXPECT_TRUE(p->pgd.get(A).present());
  ASSERT_EQ(m.do_mmap(*p, page_addr(B, 16), 1, PROT_READ_ | PROT_WRITE_, false, nullptr, pgoff_t{}), 0);
  EXPECT_FALSE(machine::find_vma(*p, page_addr(B, 16))->vm_flags.has(vm_flag::locked));
  m.do_mlockall(*p, false, false);  // munlockall()
  EXPECT_FALSE(machine::find_vma(*p, B)->vm_flags.has(vm_flag::locked));
  EXPECT_FALSE(m.folio_of(p->pgd.get(B).pfn()).test(folio_flag::mlocked));
}

}  // namespace
}  // namespace rmapkit::mm
