// The design lab as an embedder calls it: compare() and bench() return data, checked
// here without the CLI and without the kernel (diff() needs the kernel: kcheck/diff_test.cc).
#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "rmapkit/lab/bench.h"
#include "rmapkit/lab/compare.h"
#include "rmapkit/mm/anon_rmap.h"
#include "rmapkit/scenario/parser.h"

namespace rmapkit::lab {
namespace {

namespace sc = rmapkit::scenario;
using std::chrono::nanoseconds;

sc::program load(const std::string& text, const std::string& name = "lab.rmap") {
  auto parsed = sc::parse(text, name);
  if (!parsed) throw std::runtime_error(parsed.error().str());
  auto prog = sc::resolve(*parsed);
  if (!prog) throw std::runtime_error(prog.error().str());
  return *prog;
}

// A fork fan-out: P faults in two pages, forks three children, then P, C1 and C2 break
// COW on page 0, so that C3 alone still maps the original page 0 when it pages it out.
const char* const fanout =
    "spawn P\n"
    "P: mmap A anon private pages=2\n"
    "P: write A\n"
    "P: fork C1\n"
    "P: fork C2\n"
    "P: fork C3\n"
    "P: write A[0]\n"
    "C1: write A[0]\n"
    "C2: write A[0]\n"
    "C3: madvise A[0] pageout\n"
    "check\n";

TEST(LabCompare, FanOutCountsAreThoseOfEachDesignsRules) {
  const auto res = compare(load(fanout), {.designs = {"linux-6", "pte-chain"}});
  ASSERT_EQ(res.exit_code, 0) << res.errors;
  EXPECT_EQ(res.errors, "");
  EXPECT_TRUE(res.designs_agree);
  EXPECT_FALSE(res.kernel);
  ASSERT_EQ(res.designs.size(), 2U);
  const design_run& linux6 = res.designs[0];
  const design_run& chain = res.designs[1];
  EXPECT_EQ(linux6.design, "linux-6");
  EXPECT_EQ(chain.design, "pte-chain");
  EXPECT_EQ(linux6.report, chain.report) << "results never depend on the design";
  EXPECT_NE(linux6.report.find("page C3 A 0 swap=1"), std::string::npos) << linux6.report;

  // linux-6 (anon_vma and AVCs). P's first write prepares P's anon_vma: 1 anon_vma and
  // the AVC linking P's VMA to it. Each fork (anon_vma_fork) links the child's VMA to
  // every anon_vma on the parent's chain (P's: 1 AVC), then gives the child its own
  // anon_vma and an AVC to it (P's anon_vma still has P's VMA, so it cannot be reused):
  // 1 anon_vma + 2 AVCs per fork. COW copies go into the writer's existing anon_vma.
  // Total 1 + 3 = 4 anon_vmas and 1 + 3*2 = 7 AVCs, all live at once before the exits,
  // all freed at teardown.
  const auto* av = linux6.object("anon_vma");
  const auto* avc = linux6.object("anon_vma_chain");
  ASSERT_TRUE(av && avc);
  EXPECT_EQ(av->allocated, 4U);
  EXPECT_EQ(av->freed, 4U);
  EXPECT_EQ(av->peak, 4U);
  EXPECT_EQ(avc->allocated, 7U);
  EXPECT_EQ(avc->freed, 7U);
  EXPECT_EQ(avc->peak, 7U);
  EXPECT_EQ(linux6.kinds.at("write").allocated, 2U);
  EXPECT_EQ(linux6.kinds.at("fork").allocated, 9U);
  EXPECT_EQ(model_counts(linux6), (sc::kmem_counts{4, 4, 7, 7}));
  // Its peak: 4 * 104 + 7 * 64 bytes, while the two pages were mapped 4 times each.
  EXPECT_EQ(linux6.peak_bytes, 4U * 104 + 7U * 64);
  EXPECT_EQ(linux6.peak_mappings, 8U);
  EXPECT_DOUBLE_EQ(linux6.bytes_per_mapping().value_or(0), 108.0);

  // pte-chain (2.5): a page's first mapping is a direct pointer in struct page; the second
  // starts a pte_chain block of 7 slots. The first fork turns each of the two pages'
  // direct pointer into a chain (2 blocks); the other forks fit in them (4 mappings <= 7).
  // COW removes entries but never frees a block that still holds one, and anon_vma
  // objects do not exist in this design: 2 blocks, freed at teardown.
  ASSERT_EQ(chain.objects.size(), 1U);
  EXPECT_EQ(chain.objects[0].type, "pte_chain");
  EXPECT_EQ(chain.objects[0].allocated, 2U);
  EXPECT_EQ(chain.objects[0].freed, 2U);
  EXPECT_EQ(chain.objects[0].peak, 2U);
  EXPECT_EQ(chain.kinds.at("fork").allocated, 2U);
  EXPECT_EQ(chain.kinds.at("write").allocated, 0U);
  EXPECT_EQ(chain.per_frame_bytes, 8U);
  EXPECT_EQ(model_counts(chain), sc::kmem_counts{});

  // Walk work, as history says (the object-based rmap of 2.6 against 2.5's chains):
  // paging out C3's page 0 walks P's anon_vma, whose interval tree holds all four VMAs
  // of the family; three of them no longer map the page. The PTE chain holds just the
  // one mapping left.
  EXPECT_EQ(linux6.walks.walks, 1U);
  EXPECT_EQ(linux6.walks.entries, 4U);
  EXPECT_EQ(linux6.walks.misses, 3U);
  EXPECT_EQ(chain.walks.walks, 1U);
  EXPECT_EQ(chain.walks.entries, 1U);
  EXPECT_EQ(chain.walks.misses, 0U);
  EXPECT_EQ(linux6.kinds.at("madvise").entries, 4U);
  EXPECT_EQ(chain.kinds.at("madvise").entries, 1U);

  // Every statement is charged to its kind once.
  for (const auto* r : {&linux6, &chain}) {
    std::uint64_t statements = 0;
    for (const auto& [kind, cost] : r->kinds) statements += cost.count;
    EXPECT_EQ(statements, 11U) << r->design;
    EXPECT_EQ(r->kinds.at("write").count, 4U);
    EXPECT_EQ(r->kinds.at("fork").count, 3U);
  }
}

TEST(LabCompare, CountsDoNotVaryBetweenRuns) {
  const auto prog = load(fanout);
  const auto a = compare(prog), b = compare(prog);
  ASSERT_EQ(a.exit_code, 0) << a.errors;
  ASSERT_EQ(a.designs.size(), b.designs.size());
  for (std::size_t i = 0; i < a.designs.size(); ++i) {
    EXPECT_EQ(a.designs[i].peak_bytes, b.designs[i].peak_bytes);
    EXPECT_EQ(a.designs[i].walks.entries, b.designs[i].walks.entries);
    EXPECT_EQ(a.designs[i].walks.upkeep, b.designs[i].walks.upkeep);
    for (const auto& [kind, cost] : a.designs[i].kinds)
      EXPECT_EQ(cost.allocated, b.designs[i].kinds.at(kind).allocated) << kind;
  }
}

TEST(LabCompare, TimesAreTheMedianOfTheRepeatedRunsWithEveryRunsTotalKept) {
  compare_options opts;
  opts.designs = {"linux-6", "pte-chain"};
  opts.repeat = 3;
  const auto res = compare(load(fanout), opts);
  ASSERT_EQ(res.exit_code, 0) << res.errors;
  for (const auto& r : res.designs) {
    ASSERT_EQ(r.totals.size(), 3U) << r.design;
    auto sorted = r.totals;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(r.total, sorted[1]) << r.design << ": the total is the median run's";
    for (const auto& [kind, cost] : r.kinds) {
      EXPECT_GE(cost.time.count(), 0) << kind;
      EXPECT_LE(cost.time, sorted[2]) << kind << ": a kind's median cannot exceed the slowest total";
    }
  }
  opts.repeat = 1;
  const auto once = compare(load(fanout), opts);
  ASSERT_EQ(once.exit_code, 0) << once.errors;
  EXPECT_EQ(once.designs.front().totals.size(), 1U);
  EXPECT_EQ(once.designs.front().total, once.designs.front().totals.front());
}

TEST(LabCompare, NoDesignsMeansEveryDesignInTheRegistrysOrder) {
  const auto res = compare(load(fanout));
  ASSERT_EQ(res.exit_code, 0) << res.errors;
  const auto names = mm::anon_rmap_designs();
  ASSERT_EQ(res.designs.size(), names.size());
  for (std::size_t i = 0; i < names.size(); ++i) EXPECT_EQ(res.designs[i].design, names[i]);
  EXPECT_TRUE(res.find("legoos"));
  EXPECT_FALSE(res.find("linux-9"));
  EXPECT_FALSE(res.kernel_agrees()) << "nothing to hold linux-6 against without the kernel";
}

TEST(LabCompare, ARefusedStatementStopsAtTheFirstDesignWithFileLineReason) {
  // Only the memory manager knows that KSM merged the two equal pages.
  const auto res = compare(
      load("spawn P\nP: mmap A anon private pages=2\nP: write A value=1\n"
           "P: madvise A mergeable\nksm\nreclaim\n",
           "refused.rmap"));
  EXPECT_EQ(res.exit_code, sc::EXIT_SCENARIO_ERROR);
  EXPECT_EQ(res.errors, "refused.rmap:6: reclaim: refused while KSM pages exist (P at 0x100000000000)\n");
  EXPECT_FALSE(res.designs_agree);
  ASSERT_EQ(res.designs.size(), 1U);
  EXPECT_EQ(res.designs[0].exit_code, sc::EXIT_SCENARIO_ERROR);
}

TEST(LabCompare, AnUnknownDesignThrows) {
  EXPECT_THROW((void)compare(load(fanout), {.designs = {"linux-9"}}), std::invalid_argument);
  EXPECT_THROW((void)compare(load(fanout), {.designs = {"linux-6+btree"}}), std::invalid_argument);
  EXPECT_THROW((void)compare(load(fanout), {.designs = {}, .file_designs = {"btree"}}), std::invalid_argument);
}

// Eight processes map windows of one file; one page is in two of them. The file designs
// print the same report and find the same VMAs; the lists read all of them per walk.
TEST(LabCompare, FileDesignsCrossEachDesignAndDifferInTheEntriesTheirWalksRead) {
  std::string text = "file F pages=256\n";
  for (int p = 0; p < 8; ++p)
    for (int w = 0; w < 4; ++w)
      text += fmt::format("spawn P{0}{1}\nP{0}{1}: mmap W file F shared pages=4 offset={2}\nP{0}{1}: read W\n", p, w,
                          (p * 4 + w) * 7);
  text += "reclaim\ncheck\n";
  const auto res = compare(
      load(text),
      {.designs = {"linux-6", "linux-2.6.7"}, .file_designs = {"interval-tree", "prio-tree", "list"}, .repeat = 1});
  ASSERT_EQ(res.exit_code, 0) << res.errors;
  EXPECT_TRUE(res.designs_agree);
  std::vector<std::string> names;
  for (const auto& r : res.designs) names.push_back(r.design);
  EXPECT_EQ(names, (std::vector<std::string>{"linux-6", "linux-6+prio-tree", "linux-6+list", "linux-2.6.7",
                                             "linux-2.6.7+prio-tree", "linux-2.6.7+list"}));
  const auto* tree = res.find("linux-6");
  const auto* prio = res.find("linux-6+prio-tree");
  const auto* list = res.find("linux-6+list");
  EXPECT_EQ(tree->walks.vmas_visited, list->walks.vmas_visited);
  EXPECT_EQ(prio->walks.vmas_visited, list->walks.vmas_visited);
  EXPECT_GT(list->walks.entries, 4 * tree->walks.entries) << "the lists read every one of the 32 windows";
  EXPECT_GT(list->walks.entries, 2 * prio->walks.entries);
  const auto* lists = list->object("vm_area_struct.shared (list_head)");
  ASSERT_TRUE(lists);
  EXPECT_EQ(lists->peak, 32U);
  EXPECT_EQ(lists->bytes, 16U);
  EXPECT_EQ(prio->object("vm_area_struct.shared (prio_tree_node)")->bytes, 32U);
}

/// The lock counts of @r for @c.
const mm::lock_count& lock(const design_run& r, mm::rmap_lock_class c) { return r.locks[static_cast<std::size_t>(c)]; }

// AIM7's collapse, as counts: N children COW the parent's pages, then reclaim walks every
// page. 2.6.7 does every walk under the family's one anon_vma->lock, each walk reading the
// whole family; 2.6.34 spreads the walks over each child's own anon_vma; linux-6 takes the
// family's root lock again, but for walks of one or two entries.
TEST(LabCompare, LocksShowAim7TheFamilyLockHeldForWholeFamilyWalksOnlyIn267) {
  std::string text = "spawn P\nP: mmap A anon private pages=4\nP: write A\n";
  for (int c = 1; c <= 32; ++c) text += fmt::format("P: fork C{0}\nC{0}: write A\n", c);
  text += "reclaim\ncheck\n";
  const auto res = compare(load(text),
                           {.designs = {"linux-6", "linux-2.6.34", "linux-2.6.7", "pte-chain"}, .repeat = 1});
  ASSERT_EQ(res.exit_code, 0) << res.errors;
  using lc = mm::rmap_lock_class;
  const auto& l6 = lock(*res.find("linux-6"), lc::anon_vma_root_rwsem);
  const auto& l2634 = lock(*res.find("linux-2.6.34"), lc::anon_vma_lock);
  const auto& l267 = lock(*res.find("linux-2.6.7"), lc::anon_vma_lock);
  EXPECT_LE(l6.longest, 3U) << "a walk reads the child's own AVC: entry, VMA, PTE";
  EXPECT_GT(l267.longest, 32U) << "a walk of a child's page reads the family's 33 VMAs";
  EXPECT_EQ(l267.hottest_work, l267.work) << "one lock for the whole family";
  EXPECT_EQ(l6.hottest_work, l6.work) << "one root for the whole family";
  EXPECT_GT(l267.work, 10 * l6.work);
  EXPECT_LT(l2634.hottest_work, l2634.work / 10) << "2.6.34 locks each child's own anon_vma";
  EXPECT_EQ(lock(*res.find("linux-6"), lc::anon_vma_lock).acquisitions, 0U);
  EXPECT_EQ(lock(*res.find("linux-2.6.7"), lc::anon_vma_root_rwsem).acquisitions, 0U);
  // Every design takes the page-table lock once per PTE its walks examine.
  for (const auto& r : res.designs) EXPECT_EQ(lock(r, lc::ptl).acquisitions, r.walks.ptes_examined) << r.design;
  // 2.5 takes each page's chain lock on every map and unmap: 4 pages, 33 mappings each.
  EXPECT_GT(lock(*res.find("pte-chain"), lc::pte_chain_lock).acquisitions, 4U * 33);
}

TEST(LabCompare, TheSkeletonKeepsOnlySpawnsForksAndExits) {
  const auto prog = load(fanout + std::string("C3: exit\n"));
  const auto s = skeleton(prog);
  std::vector<std::string> kinds;
  for (const auto& o : s.ops) kinds.emplace_back(sc::statement_kind(o));
  EXPECT_EQ(kinds, (std::vector<std::string>{"spawn", "fork", "fork", "fork", "exit"}));
  EXPECT_FALSE(s.needs_machine_lock || s.needs_swap || s.needs_reclaim || s.needs_ksm);
  EXPECT_TRUE(prog.needs_swap) << "pageout needs swap; its skeleton does not";
}

TEST(LabBench, OneSamplePerRepeatPerStatementKind) {
  const auto prog = load(fanout);
  const auto res = bench(prog, {.repeat = 3});
  ASSERT_EQ(res.exit_code, 0) << res.errors;
  EXPECT_FALSE(res.kernel);
  EXPECT_EQ(res.kinds, (std::vector<std::string>{"spawn", "mmap", "write", "fork", "madvise", "check"}));
  ASSERT_EQ(res.model.kinds.size(), res.kinds.size());
  std::size_t statements = 0;
  for (const auto& k : res.kinds) {
    const auto& s = res.model.kinds.at(k);
    EXPECT_EQ(s.runs.size(), 3U) << k;
    statements += s.count;
  }
  EXPECT_EQ(statements, prog.ops.size());
  EXPECT_EQ(res.model.kinds.at("write").count, 4U);
  ASSERT_EQ(res.model.total.size(), 3U);
  for (std::size_t run = 0; run < 3; ++run) {
    nanoseconds sum{0};
    for (const auto& [k, s] : res.model.kinds) sum += s.runs[run];
    EXPECT_EQ(sum, res.model.total[run]) << "run " << run;
  }
}

TEST(LabBench, ARefusalIsReportedAndNothingIsSampledFurther) {
  const auto res = bench(load("spawn P\nP: mmap A anon private pages=2\nP: write A value=1\n"
                              "P: madvise A mergeable\nksm\nreclaim\n",
                              "refused.rmap"),
                         {.repeat = 4});
  EXPECT_EQ(res.exit_code, sc::EXIT_SCENARIO_ERROR);
  EXPECT_EQ(res.errors, "refused.rmap:6: reclaim: refused while KSM pages exist (P at 0x100000000000)\n");
  EXPECT_EQ(res.model.total.size(), 1U) << "stops in the first run";
}

TEST(LabBench, SummaryIsTheMedianAndTheSpread) {
  const std::vector<nanoseconds> odd{nanoseconds{5}, nanoseconds{1}, nanoseconds{3}};
  const auto s = summarize(odd);
  EXPECT_EQ(s.median, nanoseconds{3});
  EXPECT_EQ(s.min, nanoseconds{1});
  EXPECT_EQ(s.max, nanoseconds{5});
  const std::vector<nanoseconds> even{nanoseconds{4}, nanoseconds{1}, nanoseconds{2}, nanoseconds{10}};
  EXPECT_EQ(summarize(even).median, nanoseconds{3}) << "the mean of the middle two";
}

}  // namespace
}  // namespace rmapkit::lab
