// Each rmap design of the design lab (mm/designs/) on its own: how it adds a mapping,
// removes one and walks. Every test builds a machine with the design, drives it through
// the machine's public calls (mmap, write faults, fork, munmap, exit) and asserts on what
// rmap_walk hands rmap_one, on the design's object counts, and that its objects are
// freed once the processes are gone. The corpus tests show the designs agree on results;
// these pin down what makes each one different.
#include <initializer_list>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "rmapkit/mm/machine.h"
#include "support/mm_fixture.h"

namespace rmapkit::mm {
namespace {

using testing::A;

constexpr int RW = PROT_READ_ | PROT_WRITE_;

/// (mm name, address) of one rmap_one call.
using visit = std::pair<std::string, std::uint64_t>;

/// A fresh machine built with one design. At the end every invariant (the design's
/// check() included) must hold and, once every mm exited, nothing may be left: neither
/// the machine's objects nor the design's.
class design_test : public ::testing::Test {
 protected:
  explicit design_test(std::string_view design) : m(design) {}

  void TearDown() override {
    EXPECT_EQ(m.check_invariants(), "");
    for (auto* mm : std::vector<mm_struct*>(m.mms())) m.exit_mm(mm);
    EXPECT_EQ(m.live().total(), 0U) << "leak";
    for (const auto& o : m.anon_rmap_design().objects()) EXPECT_EQ(o.live(), 0U) << o.type << " leaked";
  }

  /// A process with @pages private anonymous pages at A, of which those in @written are
  /// written (so faulted in, each with its own content).
  mm_struct* process(const char* name, std::uint64_t pages, std::initializer_list<std::uint64_t> written) {
    auto* mm = m.mm_alloc(name);
    EXPECT_EQ(m.do_mmap(*mm, A, pages, RW, false, nullptr, pgoff_t{}), 0);
    for (auto i : written) EXPECT_EQ(m.access(*mm, page_addr(A, i), true, 100 + i), 0);
    return mm;
  }

  folio& folio_at(const mm_struct& mm, std::uint64_t page) { return m.folio_of(mm.pgd.get(page_addr(A, page)).pfn()); }

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

  /// The design's count of objects of @type.
  rmap_object_count objects(std::string_view type) const {
    for (const auto& o : m.anon_rmap_design().objects())
      if (o.type == type) return o;
    ADD_FAILURE() << m.anon_rmap_design().name() << " has no object type " << type;
    return {};
  }

  static visit at(const char* mm, std::uint64_t page) { return {mm, page_addr(A, page).value}; }

  machine m;
};

// ---- linux-6: the machine's own anon_vma + AVC + interval tree ----------------------------

class Linux6 : public design_test {
 protected:
  Linux6() : design_test("linux-6") {}
};

TEST_F(Linux6, ForkAddsAnAnonVmaAndAChainPerAncestorAndTheWalkFindsBoth) {
  auto* p = process("P", 4, {1});
  EXPECT_EQ(objects("anon_vma").live(), 1U);
  EXPECT_EQ(objects("anon_vma_chain").live(), 1U);
  m.dup_mm(*p, "C");
  EXPECT_EQ(objects("anon_vma").live(), 2U);        // C's own
  EXPECT_EQ(objects("anon_vma_chain").live(), 3U);  // P's; C's to P's anon_vma and to its own
  EXPECT_EQ(walk(folio_at(*p, 1)), (std::vector<visit>{at("P", 1), at("C", 1)}));
  EXPECT_EQ(m.stats().entries, 2U);
}

TEST_F(Linux6, ExitRemovesTheChildFromTheWalkAndFreesItsObjects) {
  auto* p = process("P", 4, {1});
  auto* c = m.dup_mm(*p, "C");
  m.exit_mm(c);
  EXPECT_EQ(walk(folio_at(*p, 1)), (std::vector<visit>{at("P", 1)}));
  EXPECT_EQ(objects("anon_vma").live(), 1U);
  EXPECT_EQ(objects("anon_vma_chain").live(), 1U);
  m.exit_mm(p);
  EXPECT_EQ(objects("anon_vma").live(), 0U);
  EXPECT_EQ(objects("anon_vma_chain").live(), 0U);
}

// ---- linux-3.19: AVCs in an interval tree, fork reuse by degree ---------------------------

class Linux319 : public design_test {
 protected:
  Linux319() : design_test("linux-3.19") {}
};

TEST_F(Linux319, ForkReusesAnIdleAncestorsAnonVma) {
  auto* p = process("P", 1, {0});
  auto* c = m.dup_mm(*p, "C");
  auto* g = m.dup_mm(*c, "G");
  EXPECT_EQ(objects("anon_vma").allocated, 3U);
  m.exit_mm(c);  // C's anon_vma: no VMA and one child (G's), degree 1
  m.dup_mm(*g, "H");
  EXPECT_EQ(objects("anon_vma").allocated, 3U) << "H should reuse C's anon_vma";
  EXPECT_EQ(objects("anon_vma").live(), 3U);
  EXPECT_EQ(objects("anon_vma_chain").live(), 1U + 3U + 3U);  // P's, G's, H's (P, C, G)
  EXPECT_EQ(walk(folio_at(*p, 0)), (std::vector<visit>{at("P", 0), at("G", 0), at("H", 0)}));
}

TEST_F(Linux319, WalkSkipsTheAvcsWhoseVmaMissesThePage) {
  auto* p = process("P", 8, {0});
  auto* c = m.dup_mm(*p, "C");
  ASSERT_EQ(m.do_munmap(*c, A, 4), 0);  // C keeps pages 4-7 only
  EXPECT_EQ(walk(folio_at(*p, 0)), (std::vector<visit>{at("P", 0)}));
  EXPECT_EQ(m.stats().entries, 1U) << "the tree query returns only AVCs covering the page";
}

TEST_F(Linux319, ExitFreesEveryAnonVmaAndChain) {
  auto* p = process("P", 1, {0});
  auto* c = m.dup_mm(*p, "C");
  m.exit_mm(p);  // P's anon_vma stays: it is the root of C's
  EXPECT_EQ(objects("anon_vma").live(), 2U);
  EXPECT_EQ(objects("anon_vma_chain").live(), 2U);
  EXPECT_EQ(walk(folio_at(*c, 0)), (std::vector<visit>{at("C", 0)}));
  m.exit_mm(c);
  EXPECT_EQ(objects("anon_vma").live(), 0U);
  EXPECT_EQ(objects("anon_vma_chain").live(), 0U);
}

// ---- linux-2.6.34: AVCs on lists, no reuse ------------------------------------------------

class Linux2634 : public design_test {
 protected:
  Linux2634() : design_test("linux-2.6.34") {}
};

TEST_F(Linux2634, ForkAlwaysAddsAnAnonVmaAndAChainPerAncestor) {
  auto* p = process("P", 1, {0});
  auto* c = m.dup_mm(*p, "C");
  auto* g = m.dup_mm(*c, "G");
  m.exit_mm(c);
  m.dup_mm(*g, "H");
  EXPECT_EQ(objects("anon_vma").allocated, 4U) << "no reuse: H gets its own anon_vma";
  EXPECT_EQ(objects("anon_vma_chain").allocated, 1U + 2U + 3U + 4U);
  EXPECT_EQ(objects("anon_vma_chain").live(), 1U + 3U + 4U);  // C's two went with it
  EXPECT_EQ(walk(folio_at(*p, 0)), (std::vector<visit>{at("P", 0), at("G", 0), at("H", 0)}));
}

TEST_F(Linux2634, WalkReadsEveryAvcOnTheListEvenThoseMissingThePage) {
  auto* p = process("P", 8, {0});
  auto* c = m.dup_mm(*p, "C");
  ASSERT_EQ(m.do_munmap(*c, A, 4), 0);  // C keeps pages 4-7 only
  EXPECT_EQ(walk(folio_at(*p, 0)), (std::vector<visit>{at("P", 0)}));
  EXPECT_EQ(m.stats().entries, 2U) << "C's AVC is read, then skipped by vma_address()";
  EXPECT_EQ(m.stats().vmas_visited, 1U);
}

TEST_F(Linux2634, UnmapRemovesTheChainsAndExitFreesTheAnonVmas) {
  auto* p = process("P", 1, {0});
  auto* c = m.dup_mm(*p, "C");
  ASSERT_EQ(m.do_munmap(*c, A, 1), 0);
  EXPECT_EQ(objects("anon_vma_chain").live(), 1U);
  EXPECT_EQ(objects("anon_vma").live(), 1U);
  EXPECT_EQ(walk(folio_at(*p, 0)), (std::vector<visit>{at("P", 0)}));
  m.exit_mm(p);
  EXPECT_EQ(objects("anon_vma").live(), 0U);
  EXPECT_EQ(objects("anon_vma_chain").live(), 0U);
}

// ---- linux-2.6.7: one anon_vma per fork family ---------------------------------------------

class Linux267 : public design_test {
 protected:
  Linux267() : design_test("linux-2.6.7") {}
};

TEST_F(Linux267, ForkJoinsTheFamilyWithoutAllocating) {
  auto* p = process("P", 1, {0});
  auto* c = m.dup_mm(*p, "C");
  m.dup_mm(*c, "G");
  EXPECT_EQ(objects("anon_vma").allocated, 1U);
  EXPECT_EQ(walk(folio_at(*p, 0)), (std::vector<visit>{at("G", 0), at("C", 0), at("P", 0)}));  // newest first
}

TEST_F(Linux267, WalkOfAChildsOwnCopyVisitsTheWholeFamily) {
  auto* p = process("P", 1, {0});
  auto* c = m.dup_mm(*p, "C");
  ASSERT_EQ(m.access(*c, A, true, 7), 0);  // C copies the page: only C maps the copy
  folio& copy = folio_at(*c, 0);
  EXPECT_EQ(copy.mapcount, 1);
  EXPECT_EQ(walk(copy), (std::vector<visit>{at("C", 0), at("P", 0)})) << "P is visited although it does not map it";
  EXPECT_EQ(m.stats().entries, 2U);
}

TEST_F(Linux267, TheFamilysAnonVmaGoesWithItsLastVma) {
  auto* p = process("P", 1, {0});
  auto* c = m.dup_mm(*p, "C");
  m.exit_mm(p);
  EXPECT_EQ(objects("anon_vma").live(), 1U);
  EXPECT_EQ(walk(folio_at(*c, 0)), (std::vector<visit>{at("C", 0)}));
  m.exit_mm(c);
  EXPECT_EQ(objects("anon_vma").live(), 0U);
}

// ---- pte-chain: Linux 2.5's per-page PTE chains --------------------------------------------

class PteChain : public design_test {
 protected:
  PteChain() : design_test("pte-chain") {}
};

TEST_F(PteChain, FirstMappingIsDirectThenChainsOfSevenPerBlock) {
  auto* p = process("P", 1, {0});
  EXPECT_EQ(objects("pte_chain").allocated, 0U) << "one mapping: the direct pointer, no chain";
  EXPECT_EQ(m.stats().upkeep, 0U);
  for (int i = 0; i < 8; ++i) m.dup_mm(*p, fmt::format("C{}", i));
  // 9 mappings: the direct one moved onto the chain, then 8 more: a full block and 2 of 7.
  EXPECT_EQ(objects("pte_chain").live(), 2U);
  EXPECT_EQ(m.stats().upkeep, 9U) << "each mapping on a chain writes one slot";
}

TEST_F(PteChain, WalkFindsEveryMappingAfterForkAndNoOther) {
  auto* p = process("P", 4, {2});
  auto* c1 = m.dup_mm(*p, "C1");
  m.dup_mm(*p, "C2");
  ASSERT_EQ(m.access(*c1, page_addr(A, 2), true, 9), 0);  // C1 copies: off the page's chain
  auto seen = walk(folio_at(*p, 2));
  EXPECT_EQ(std::multiset<visit>(seen.begin(), seen.end()), (std::multiset<visit>{at("P", 2), at("C2", 2)}));
  EXPECT_EQ(m.stats().entries, 2U) << "one entry per mapping, nothing else";
}

TEST_F(PteChain, UnmapRemovesTheEntryAndFreesEmptiedBlocks) {
  auto* p = process("P", 1, {0});
  std::vector<mm_struct*> children;
  for (int i = 0; i < 8; ++i) children.push_back(m.dup_mm(*p, fmt::format("C{}", i)));
  ASSERT_EQ(objects("pte_chain").live(), 2U);
  for (auto* c : children) ASSERT_EQ(m.do_munmap(*c, A, 1), 0);
  EXPECT_EQ(objects("pte_chain").live(), 1U) << "a chain never turns back into a direct pointer";
  EXPECT_EQ(walk(folio_at(*p, 0)), (std::vector<visit>{at("P", 0)}));
  m.exit_mm(p);
  EXPECT_EQ(objects("pte_chain").live(), 0U);
}

// ---- legoos: a list of one-cache-line entries per page -------------------------------------

class Legoos : public design_test {
 protected:
  Legoos() : design_test("legoos") {}
};

constexpr std::string_view LEGO_IN_FRAME = "lego_rmap in the frame (used)";

TEST_F(Legoos, FirstEntryLivesInTheFrameAndEveryInsertChecksTheListForADuplicate) {
  auto* p = process("P", 1, {0});
  EXPECT_EQ(objects(LEGO_IN_FRAME).live(), 1U);
  EXPECT_EQ(objects("lego_rmap").allocated, 0U);
  EXPECT_EQ(m.stats().upkeep, 1U);  // the frame's entry read
  m.dup_mm(*p, "C1");
  m.dup_mm(*p, "C2");
  EXPECT_EQ(objects("lego_rmap").live(), 2U);
  EXPECT_EQ(m.stats().upkeep, 1U + 1U + 2U) << "the n-th insert reads the n-1 entries before it";
}

TEST_F(Legoos, WalkVisitsExactlyTheMappings) {
  auto* p = process("P", 4, {3});
  auto* c1 = m.dup_mm(*p, "C1");
  m.dup_mm(*p, "C2");
  ASSERT_EQ(m.access(*c1, page_addr(A, 3), true, 9), 0);  // C1 copies: its entry leaves the list
  auto seen = walk(folio_at(*p, 3));
  EXPECT_EQ(std::multiset<visit>(seen.begin(), seen.end()), (std::multiset<visit>{at("P", 3), at("C2", 3)}));
  EXPECT_EQ(m.stats().entries, 2U);
}

TEST_F(Legoos, RemoveDropsTheEntry) {
  auto* p = process("P", 1, {0});
  auto* c = m.dup_mm(*p, "C");
  ASSERT_EQ(objects("lego_rmap").live(), 1U);
  ASSERT_EQ(m.do_munmap(*c, A, 1), 0);
  EXPECT_EQ(objects("lego_rmap").live(), 0U);
  EXPECT_EQ(objects(LEGO_IN_FRAME).live(), 1U);
  EXPECT_EQ(walk(folio_at(*p, 0)), (std::vector<visit>{at("P", 0)}));
  m.exit_mm(p);
  EXPECT_EQ(objects(LEGO_IN_FRAME).live(), 0U);
}

// ---- the registry --------------------------------------------------------------------------

TEST(DesignRegistry, ListsEveryDesignOnceDefaultFirstAndBuildsEachByName) {
  const auto names = anon_rmap_designs();
  EXPECT_EQ(
      std::vector<std::string_view>(names.begin(), names.end()),
      (std::vector<std::string_view>{"linux-6", "linux-3.19", "linux-2.6.34", "linux-2.6.7", "pte-chain", "legoos"}));
  for (auto name : names) {
    machine m(name);
    EXPECT_EQ(m.anon_rmap_design().name(), name);
  }
}

TEST(DesignRegistry, AnUnknownNameListsTheKnownOnes) {
  try {
    machine m("linux-1.0");
    FAIL() << "no such design";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("unknown rmap design 'linux-1.0' (known: linux-6, linux-3.19,"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace rmapkit::mm
