// The file reverse-map designs (mm/designs/i_mmap_*.cc) on their own: the same walks
// (which VMAs rmap_one sees) under each, and what makes each one different: the 2.6.6
// lists read every VMA of the file, the prio tree and the interval tree read a path and
// the hits; fork puts a child's copy right after its parent's; a VMA whose range changes
// (an mprotect split) is found at its new offsets. At the end every invariant (each
// design's check() included) holds and nothing is left.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "rmapkit/mm/machine.h"
#include "support/mm_fixture.h"

namespace rmapkit::mm {
namespace {

constexpr int RW = PROT_READ_ | PROT_WRITE_;
constexpr vaddr_t BASE{0x200000000000ULL};
constexpr std::uint64_t WINDOW = 4;

/// (mm name, address) of one rmap_one call.
using visit = std::pair<std::string, std::uint64_t>;

class FileDesign : public ::testing::TestWithParam<std::string> {
 protected:
  FileDesign() : m(GetParam()) {}

  void TearDown() override {
    EXPECT_EQ(m.check_invariants(), "");
    for (auto* mm : std::vector<mm_struct*>(m.mms())) m.exit_mm(mm);
    if (file) m.file_put(file);
    EXPECT_EQ(m.live().total(), 0U) << "leak";
    for (const auto& o : m.file_rmap_design().objects()) EXPECT_EQ(o.live(), 0U) << o.type << " leaked";
  }

  /// Window @w of @mm: WINDOW pages of the file from @pgoff, each window in its own place.
  static vaddr_t window(std::uint64_t w) { return page_addr(BASE, w * 1024); }
  void map(mm_struct& mm, std::uint64_t w, std::uint64_t pgoff, bool shared = true) {
    ASSERT_EQ(m.do_mmap(mm, window(w), WINDOW, RW, shared, file, pgoff_t{pgoff}), 0);
    for (std::uint64_t i = 0; i < WINDOW; ++i) ASSERT_EQ(m.access(mm, page_addr(window(w), i), false), 0);
  }

  folio& page(std::uint64_t index) { return m.folio_of(file->i_pages.at(index)); }

  /// Every rmap_one call of a walk of @f, in order; the stats count that walk alone.
  std::vector<visit> walk(folio& f) {
    std::vector<visit> seen;
    rmap_walk_control rwc;
    rwc.rmap_one = [&](folio&, vm_area_struct& vma, vaddr_t addr) {
      seen.emplace_back(vma.vm_mm->name, addr.value);
      return true;
    };
    m.stats() = {};
    m.rmap_walk(f, rwc);
    return seen;
  }
  static std::vector<visit> sorted(std::vector<visit> v) {
    std::sort(v.begin(), v.end());
    return v;
  }

  [[nodiscard]] bool is(std::string_view design) const { return m.file_rmap_design().name() == design; }

  machine m;
  address_space* file = m.memfd_create("F", 4096, 7);
};

// 64 processes, each with 4 windows of a 4096-page file at scattered offsets; one page
// that 3 windows hold. Every design finds those 3; the lists read all 256 VMAs to do it.
TEST_P(FileDesign, AWalkFindsTheWindowsThatHoldThePageAndTheListsReadEveryOne) {
  std::vector<mm_struct*> procs;
  for (int p = 0; p < 64; ++p) {
    procs.push_back(m.mm_alloc("P" + std::to_string(p)));
    for (std::uint64_t w = 0; w < 4; ++w)
      map(*procs.back(), w, ((static_cast<std::uint64_t>(p) * 4 + w) * 97) % 4000 + 100);
  }
  map(*procs[3], 4, 2000);
  map(*procs[9], 4, 1998);
  map(*procs[40], 4, 2001);
  const auto got = sorted(walk(page(2001)));
  EXPECT_EQ(got, sorted({{"P3", page_addr(window(4), 1).value},
                         {"P9", page_addr(window(4), 3).value},
                         {"P40", page_addr(window(4), 0).value}}));
  EXPECT_EQ(m.stats().vmas_visited, 3U);
  if (is("list")) EXPECT_EQ(m.stats().entries, 259U);  // every VMA of the file
  else EXPECT_LT(m.stats().entries, 40U) << "a tree reads a path and the hits, not the file's 259 VMAs";
}

TEST_P(FileDesign, ForkPutsTheChildsCopyRightAfterItsParentsInTheWalk) {
  auto* p = m.mm_alloc("P");
  auto* q = m.mm_alloc("Q");
  map(*q, 0, 10);
  map(*p, 0, 10);
  m.dup_mm(*p, "C");
  const auto got = walk(page(11));
  ASSERT_EQ(got.size(), 3U);
  const auto at_p = std::find_if(got.begin(), got.end(), [](const visit& v) { return v.first == "P"; });
  ASSERT_NE(at_p + 1, got.end());
  EXPECT_EQ((at_p + 1)->first, "C");
}

TEST_P(FileDesign, AnMprotectSplitMovesTheSecondHalfToItsNewOffsets) {
  auto* p = m.mm_alloc("P");
  map(*p, 0, 100);
  auto* q = m.mm_alloc("Q");
  map(*q, 0, 102);
  ASSERT_EQ(m.do_mprotect(*p, page_addr(window(0), 2), 2, PROT_READ_), 0);  // P's window: two VMAs now
  EXPECT_EQ(sorted(walk(page(103))),
            sorted({{"P", page_addr(window(0), 3).value}, {"Q", page_addr(window(0), 1).value}}));
  EXPECT_EQ(walk(page(100)), (std::vector<visit>{{"P", page_addr(window(0), 0).value}}));
  EXPECT_EQ(m.file_rmap_design().objects().front().live(), 3U);  // one index entry per VMA
}

TEST_P(FileDesign, PrivateAndSharedMappingsAreBothFound) {
  auto* p = m.mm_alloc("P");
  map(*p, 0, 50, false);
  map(*p, 1, 50, true);
  EXPECT_EQ(walk(page(51)).size(), 2U);
  if (is("list")) {
    // 2.6.6 kept them apart: the private list is walked first.
    EXPECT_EQ(walk(page(51)).front().second, page_addr(window(0), 1).value);
    const auto dump = m.file_rmap_design().dump(&page(51));
    ASSERT_EQ(dump.size(), 1U);
    ASSERT_EQ(dump[0].links.size(), 2U);
    EXPECT_EQ(dump[0].links[0].field, "i_mmap");
    EXPECT_EQ(dump[0].links[1].field, "i_mmap_shared");
  }
}

TEST_P(FileDesign, LinkingCostsOneListEntryOrOneTreePath) {
  std::vector<mm_struct*> procs;
  m.stats() = {};
  for (int p = 0; p < 256; ++p) {
    procs.push_back(m.mm_alloc("P" + std::to_string(p)));
    ASSERT_EQ(m.do_mmap(*procs.back(), window(0), WINDOW, RW, true, file, pgoff_t{std::uint64_t(p) * 8}), 0);
  }
  const auto upkeep = m.stats().upkeep;
  if (is("list")) EXPECT_EQ(upkeep, 256U);
  else EXPECT_GT(upkeep, 256U * 4) << "a tree insert compares along a path of about log2(256) nodes";
  if (is("list")) return;
  EXPECT_LT(upkeep, 256U * 20);
}

INSTANTIATE_TEST_SUITE_P(Designs, FileDesign, ::testing::Values("linux-6", "linux-6+prio-tree", "linux-6+list"),
                         [](const auto& tp) {
                           std::string n = tp.param;
                           std::replace_if(
                               n.begin(), n.end(), [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); },
                               '_');
                           return n;
                         });

TEST(FileDesignRegistry, PrioTreeDumpDrawsTheTreeWithItsIndexBits) {
  machine m("linux-2.6.7+prio-tree");
  auto* f = m.memfd_create("F", 64, 1);
  auto* p = m.mm_alloc("P");
  ASSERT_EQ(m.do_mmap(*p, BASE, 4, RW, true, f, pgoff_t{8}), 0);
  ASSERT_EQ(m.do_mmap(*p, page_addr(BASE, 1024), 4, RW, true, f, pgoff_t{8}), 0);  // the same range: a vm_set
  ASSERT_EQ(m.do_mmap(*p, page_addr(BASE, 2048), 30, RW, true, f, pgoff_t{20}), 0);
  const auto dump = m.file_rmap_design().dump(nullptr);
  ASSERT_EQ(dump.size(), 3U);  // the root and two tree nodes: the equal range hangs off one
  EXPECT_EQ(dump[0].type, "prio_tree_root");
  EXPECT_EQ(dump[0].fields[1], (std::pair<std::string, std::string>{"index_bits", "6"}));
  EXPECT_EQ(dump[1].fields[1], (std::pair<std::string, std::string>{"heap_index", "49"}));  // the largest last on top
  EXPECT_EQ(dump[2].links.back().field, "vm_set");
  EXPECT_EQ(m.check_invariants(), "");
  m.exit_mm(p);
  m.file_put(f);
  EXPECT_EQ(m.live().total(), 0U);
}

}  // namespace
}  // namespace rmapkit::mm
