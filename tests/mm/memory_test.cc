// Faults at the end of a file (mm/memory.cc): a mapping may reach past the file's end — an
// mremap grows it, a shared anonymous mapping grows past its shmem object — but no page lies
// there, so a fault there is SIGBUS, and fault-around stops at the end.
#include <gtest/gtest.h>

#include "rmapkit/mm/machine.h"
#include "support/mm_fixture.h"

namespace rmapkit::mm {
namespace {

using testing::A;

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

}  // namespace
}  // namespace rmapkit::mm

namespace rmapkit::mm {
namespace {

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

}  // namespace
}  // namespace rmapkit::mm
