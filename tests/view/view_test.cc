// The view library: `show`'s state and `walk`'s steps. The property: on random scenarios,
// for every design, a folio_referenced() walk of every mapped frame visits every PTE that
// maps it, and the counts its steps add up to are the machine's walk_stats (what
// `rmapkit compare` sums). Then the errors a user meets, each naming what is wrong.
#include <algorithm>
#include <cstdlib>
#include <set>
#include <sstream>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidcheck.h>

#include "rmapkit/mm/anon_rmap.h"
#include "rmapkit/model/session.h"
#include "rmapkit/scenario/generate.h"
#include "rmapkit/scenario/parser.h"
#include "rmapkit/view/state.h"
#include "rmapkit/view/walk.h"

namespace rmapkit::view {
namespace {

namespace sc = rmapkit::scenario;

sc::program program_of(const std::string& text, const std::string& name = "t.rmap") {
  auto parsed = sc::parse(text, name);
  if (!parsed) throw std::runtime_error(parsed.error().str());
  auto prog = sc::resolve(*parsed);
  if (!prog) throw std::runtime_error(prog.error().str());
  return std::move(*prog);
}

model::run_options options(const std::string& design) {
  model::run_options o;
  o.design = design;
  o.check_invariants = true;
  return o;
}

/// Every (mm, address) whose PTE maps @pfn, read from the page tables.
std::set<std::pair<std::string, std::uint64_t>> ptes_of(const model::session& s, pfn_t pfn) {
  std::set<std::pair<std::string, std::uint64_t>> out;
  for (const auto* mm : s.machine().mms())
    mm->pgd.for_each(sc::slot_start(0), sc::slot_start(s.program().slot_count), [&](vaddr_t a, mm::pte_t pte) {
      if (pte.present() && pte.pfn() == pfn) out.emplace(mm->name, a.value);
    });
  return out;
}

/// The property, at the session's current state: every mapped frame's referenced walk
/// finds each of its PTEs, unless it stopped at a VM_LOCKED VMA (the folio is mlocked),
/// and its steps count what walk_stats counted.
std::uint64_t g_ptes_found = 0;  // over the whole property: it must have walked something

void check_every_frame(model::session& s, walk_op op = walk_op::referenced) {
  const auto st = snapshot(s);
  for (const auto& f : st.folios) {
    if (f.mapcount == 0) continue;
    const pfn_t pfn{f.pfn};
    const auto want = ptes_of(s, pfn);
    walk_target t;
    t.frame = f.id;
    const auto w = trace_walk(s, t, op);
    RC_ASSERT(w.traced == w.counts);
    // show --frame finds the frame's PTEs by vma_address(); the whole dump by a pass over
    // the page tables: the two agree.
    RC_ASSERT(w.before.folios.size() == 1U);
    RC_ASSERT(w.before.folios[0].mapped_by.size() == f.mapped_by.size());
    RC_ASSERT(w.counts.walks == 1U);
    std::set<std::pair<std::string, std::uint64_t>> seen;
    for (std::size_t i = 0; i < w.steps.size(); ++i) {
      const auto& step = w.steps[i];
      if (step.kind != "pte" || !step.ok || !*step.ok) continue;
      for (const auto& p : want)
        if (p.second == *step.addr) seen.insert(p);
    }
    const bool mlocked = std::find(f.flags.begin(), f.flags.end(), "mlocked") != f.flags.end();
    RC_LOG() << "frame " << f.id << " of " << s.program().file << " after statement " << s.position() << "\n"
             << format_text(w);
    // A KSM page is found through its rmap_items and, in a second pass, the forked children
    // of their mms: once the mm whose rmap_item found a child's mapping is gone, the child's
    // mapping is found again only when ksmd next scans it (as in the kernel; the invariant
    // checker makes the same exception). Every other page's walk finds every PTE.
    const bool ksm = f.mapping == "ksm";
    if (!mlocked && !ksm) RC_ASSERT(seen.size() == want.size());
    RC_ASSERT(seen.size() <= want.size());
    g_ptes_found += seen.size();
  }
}

/// Runs @prog under @design to its middle and to its end, checking every frame's walk
/// (@op) at both. Invariants are checked after every statement, also after the walks
/// (whose referenced walks change young bits, as reclaim's do).
void run_checking_walks(const sc::program& prog, const std::string& design, walk_op op) {
  model::session s(prog, options(design));
  std::ostringstream out, err;
  RC_ASSERT(s.run_to(prog.ops.size() / 2, out, err) != model::EXIT_MODEL_BUG);
  if (!s.done()) check_every_frame(s, op);
  const int code = s.run_to(prog.ops.size(), out, err);
  RC_LOG() << err.str();
  RC_ASSERT(code != model::EXIT_MODEL_BUG);
  check_every_frame(s, op);
}

TEST(ViewProperty, ReferencedWalkVisitsEveryPteAndCountsAgree) {
  const auto designs = mm::anon_rmap_designs();
  const bool ok = rc::check("every mapped PTE is found by a referenced walk", [&] {
    sc::random_options o;
    o.seed = *rc::gen::arbitrary<std::uint32_t>();
    o.statements = *rc::gen::inRange(60U, 200U);
    o.max_processes = *rc::gen::inRange(1U, 5U);
    o.max_region_pages = *rc::gen::inRange(4U, 24U);
    o.ksm = *rc::gen::arbitrary<bool>();
    o.reclaim = *rc::gen::arbitrary<bool>();
    const std::string design(designs[*rc::gen::inRange<std::size_t>(0, designs.size())]);
    const auto prog = program_of(sc::generate_random(o), fmt::format("seed-{}.rmap", o.seed));
    RC_LOG() << "rmapkit gen random --seed " << o.seed << " --statements " << o.statements << " --processes "
             << o.max_processes << " --pages " << o.max_region_pages << (o.ksm ? " --ksm" : "")
             << (o.reclaim ? " --reclaim" : "") << "; design " << design << "\n";
    run_checking_walks(prog, design, walk_op::referenced);
  });
  EXPECT_TRUE(ok);
  EXPECT_GT(g_ptes_found, 1000U) << "the random scenarios must map pages for the property to say anything";
}

// The same property where folios are large (anonymous 16k to 2m, shmem 16k to 2m): a large
// folio's walk looks up each of its pages in each VMA (or its PMD), and its steps count what
// walk_stats counted. The plain walk, not folio_referenced(): outside reclaim, its restoring
// a large folio's mlock (as the kernel's does) would count one mlock more than the VMAs hold,
// which the kernel tolerates and the model's checker does not.
TEST(ViewProperty, LargeFolioWalksVisitEveryPteAndCountsAgree) {
  g_ptes_found = 0;
  const bool ok = rc::check("every mapped PTE of a large folio is found by an rmap walk", [&] {
    sc::random_options o;
    o.seed = *rc::gen::arbitrary<std::uint32_t>();
    o.statements = *rc::gen::inRange(30U, 80U);
    o.pageout = false;
    o.thp_anon = 0x3FC;   // 16k to 2m: orders 2 to 9
    o.thp_shmem = 0x3FC;  // the same for shmem
    const auto prog = program_of(sc::generate_random(o), fmt::format("seed-{}.rmap", o.seed));
    RC_LOG() << "rmapkit gen random --seed " << o.seed << " --statements " << o.statements
             << " --thp-anon 16k,32k,64k,128k,256k,512k,1m,2m --thp-shmem 16k,32k,64k,128k,256k,512k,1m,2m "
                "--no-pageout\n";
    run_checking_walks(prog, "linux-6", walk_op::none);
  });
  EXPECT_TRUE(ok);
  EXPECT_GT(g_ptes_found, 1000U) << "the random scenarios must map pages for the property to say anything";
}

TEST(View, TheWalkOfAPageOfALargeFolioWalksItsFolio) {
  const auto prog = program_of(
      "thp anon=none shmem=64k,2m\nspawn P\nP: mmap A anon shared pages=16 huge\nP: mmap B anon shared pages=512 huge\n"
      "P: write A[0]\nP: write B[0]\nP: fork C\nC: read A[3]\nC: read B[7]\n");
  model::session s(prog, options("linux-6"));
  std::ostringstream out, err;
  ASSERT_EQ(s.run_to(prog.ops.size(), out, err), 0) << err.str();
  walk_target t;
  t.page = "C:A:3";
  const auto w = trace_walk(s, t, walk_op::none);
  EXPECT_EQ(w.result, "rmap_walk() found 32 mappings (map count 32)");
  EXPECT_EQ(w.traced, w.counts);
  EXPECT_EQ(w.counts.ptes_examined, 32U);
  const auto text = format_text(w);
  EXPECT_NE(text.find("the PTE maps page 3 of this folio (frame 4)"), std::string::npos) << text;
  t.page = "C:B:7";
  const auto pmd = trace_walk(s, t, walk_op::referenced);
  EXPECT_EQ(pmd.counts.ptes_examined, 2U);  // one PMD in each process
  EXPECT_NE(format_text(pmd).find("the PMD maps this folio, every page of it"), std::string::npos);
  EXPECT_THROW((void)trace_walk(s, t, walk_op::unmap), view_error);
  EXPECT_THROW((void)trace_walk(s, t, walk_op::migrate), view_error);
}

const char* const FORK_COW =
    "spawn P\n"
    "P: mmap A anon private pages=8\n"
    "P: write A[0:6]\n"
    "P: read A[6]\n"
    "P: fork C\n"
    "C: write A[0]\n";

TEST(View, ShowNamesFramesAsABareCheckDoes) {
  const auto prog = program_of(FORK_COW);
  model::session s(prog, options("linux-6"));
  std::ostringstream out, err;
  s.run_to(5, out, err);
  const auto st = snapshot(s);
  ASSERT_EQ(st.folios.size(), 6U);  // the zero page is not a frame of the report
  EXPECT_EQ(st.folios[0].mapped_by.size(), 2U);
  EXPECT_EQ(st.folios[0].mapped_by[0].process, "C");  // processes by name, as check lists them
  ASSERT_EQ(st.anon_vmas.size(), 2U);
  EXPECT_EQ(st.anon_vmas[1].root, 1U);
  EXPECT_EQ(st.anon_vmas[0].num_children, 2U);  // the root counts itself and the child's anon_vma
}

TEST(View, WalkOfACowedPageGoesThroughTheChildsAnonVmaOnly) {
  const auto prog = program_of(FORK_COW);
  model::session s(prog, options("linux-6"));
  std::ostringstream out, err;
  s.run_to(prog.ops.size(), out, err);
  walk_target t;
  t.page = "C:A:0";
  const auto w = trace_walk(s, t, walk_op::none);
  EXPECT_EQ(w.counts.vmas_visited, 1U) << format_text(w);
  EXPECT_EQ(w.counts.misses, 0U);
  EXPECT_NE(format_text(w).find("start at anon_vma av2"), std::string::npos) << format_text(w);
}

TEST(View, BadInputIsNamed) {
  const auto prog = program_of(FORK_COW);
  EXPECT_THROW((void)parse_at(prog, "7"), view_error);
  EXPECT_THROW((void)parse_at(prog, "line:99"), view_error);
  EXPECT_THROW((void)parse_at(prog, "x"), view_error);
  EXPECT_EQ(parse_at(prog, "line:5"), 5U);
  EXPECT_EQ(parse_at(prog, "end"), 6U);

  model::session s(prog, options("linux-6"));
  std::ostringstream out, err;
  s.run_to(prog.ops.size(), out, err);
  auto message = [&](auto&& f) {
    try {
      f();
    } catch (const view_error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  filter pid;
  pid.pid = "Q";
  EXPECT_EQ(message([&] { (void)snapshot(s, pid); }), "--pid Q: no such process in the scenario");
  filter frame;
  frame.frame = 99;
  EXPECT_EQ(message([&] { (void)snapshot(s, frame); }), "no frame 99: 7 frames are in use here (ids 1 to 7)");
  walk_target zero;
  zero.page = "P:A:6";
  EXPECT_EQ(message([&] { (void)trace_walk(s, zero, walk_op::none); }),
            "--page P:A:6: not mapped to a frame: it maps the zero page, which has no reverse map");
  walk_target hole;
  hole.page = "P:A:7";
  EXPECT_EQ(message([&] { (void)trace_walk(s, hole, walk_op::none); }),
            "--page P:A:7: not mapped to a frame: its PTE holds nothing (pte_none)");
  walk_target region;
  region.page = "P:B:0";
  EXPECT_EQ(message([&] { (void)trace_walk(s, region, walk_op::none); }), "--page P:B:0: process P has no region B");
  EXPECT_EQ(message([&] { (void)parse_walk_op("clean"); }),
            "--op clean: unknown operation (none, referenced, unmap, mkclean, migrate)");
  walk_target anon;
  anon.frame = 1;
  EXPECT_EQ(message([&] { (void)trace_walk(s, anon, walk_op::mkclean); }),
            "--op mkclean: folio_mkclean() cleans page-cache folios; this frame is anonymous");
}

}  // namespace
}  // namespace rmapkit::view
