// Replaying traces on the model: tasks map to mms as in the kernel (fork copies, CLONE_VM
// shares, exec replaces, the last task takes the mm with it), brk keeps one heap VMA,
// what the model cannot do is counted by name, snapshots are compared by sharing, and every
// corpus scenario's trace replays to the snapshots its own run took.
#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "rmapkit/mm/anon_rmap.h"
#include "rmapkit/replay/replay.h"
#include "rmapkit/replay/scenario_replay.h"
#include "rmapkit/replay/scenario_trace.h"
#include "rmapkit/scenario/parser.h"
#include "support/subprocess.h"

namespace rmapkit::replay {
namespace {

constexpr vaddr_t A{0x7f0000000000};

std::vector<record> parse(const std::string& body) {
  std::istringstream in("rtrace 1\nkernel k\npage-size 4096\nrecorder test\n" + body);
  reader r(in, "t");
  std::vector<record> out;
  while (auto rec = r.next()) out.push_back(*rec);
  return out;
}

/// A replayer that has applied @body (text records, no header).
std::unique_ptr<replayer> replayed(const std::string& body) {
  auto r = std::make_unique<replayer>(replay_options{"linux-6", true});
  for (const auto& rec : parse(body)) r->apply(rec);
  return r;
}

TEST(Replay, AThreadSharesItsParentsMmAndKeepsItAliveAfterTheParentExits) {
  auto r = replayed(
      "exec 10\nmap 10 0x7f0000000000 2 rw-p anon\nclone-vm 10 11\nfault 11 0x7f0000000000 w\n"
      "fork 10 12\nexit 10\n");
  auto s = r->take("now");
  ASSERT_EQ(s.processes.size(), 2U) << "the thread's mm and the fork child's";
  EXPECT_EQ(s.processes[0].tid, 11U) << "the mm is listed under its lowest live tid";
  ASSERT_EQ(s.processes[0].pages.size(), 1U) << "the thread's write is in the shared mm";
  EXPECT_FALSE(s.processes[0].pages[0].exclusive) << "the fork made the page shared";
  EXPECT_EQ(s.processes[0].pages[0].frame, s.processes[1].pages[0].frame);
  EXPECT_EQ(r->machine().live().mms, 2U);
}

TEST(Replay, ExecGivesTheTaskAFreshMm) {
  auto r = replayed("exec 10\nmap 10 0x7f0000000000 1 rw-p anon\nfault 10 0x7f0000000000 w\nexec 10\n");
  auto s = r->take("now");
  ASSERT_EQ(s.processes.size(), 1U);
  EXPECT_TRUE(s.processes[0].vmas.empty());
  EXPECT_EQ(r->machine().live().folios, 0U) << "the old mm's page went with it";
}

TEST(Replay, BrkGrowsOneHeapVmaAndShrinksIt) {
  auto r = replayed(
      "exec 10\nbrk 10 0x555555559010 0x55555557a000\nbrk 10 0x55555557a000 0x55555559b000\n"
      "fault 10 0x555555590000 w\nbrk 10 0x55555559b000 0x555555580800\n");
  auto s = r->take("now");
  ASSERT_EQ(s.processes[0].vmas.size(), 1U) << "do_brk_flags() joins each extension to the heap";
  EXPECT_EQ(s.processes[0].vmas[0].start, vaddr_t{0x55555555a000});
  EXPECT_EQ(s.processes[0].vmas[0].end, vaddr_t{0x555555581000}) << "the break rounded up to a page";
  EXPECT_TRUE(s.processes[0].pages.empty()) << "the page past the new break was unmapped";
}

TEST(Replay, MlockallLocksWhatThereIsAndWhatComesThenMunlockallUndoesBoth) {
  auto r = replayed(
      "exec 10\nmap 10 0x7f0000000000 2 rw-p anon\nlock-all 10 current future\n"
      "map 10 0x7f0000010000 2 rw-p anon\nbrk 10 0x555555559000 0x55555555b000\n");
  const auto* mm = r->task_mm(10);
  ASSERT_NE(mm, nullptr);
  for (const auto& [start, vma] : mm->mm_mt) EXPECT_TRUE(vma->vm_flags.has(mm::vm_flag::locked)) << std::hex << start;
  EXPECT_EQ(r->take("locked").processes[0].pages.size(), 6U) << "every page faulted in: 2 mapped, 2 more, the heap's 2";
  r->apply({0, ev_lock_all{10, false}});
  r->apply({0, ev_map{10, vaddr_t{0x7f0000020000}, 1, {true, true, false, false}, {}, {}, false, false}});
  for (const auto& [start, vma] : mm->mm_mt) EXPECT_FALSE(vma->vm_flags.has(mm::vm_flag::locked)) << std::hex << start;
  EXPECT_EQ(r->take("unlocked").processes[0].pages.size(), 6U) << "munlockall keeps the pages; the new VMA is empty";
  r->apply({0, ev_lock_all{10, true, false, true, true}});
  EXPECT_EQ(r->stats().unsupported.at("lock-all onfault"), 1U);
}

TEST(Replay, WhatTheModelCannotDoIsCountedByName) {
  auto r = replayed(
      "exec 10\nmap 10 0x7f0000000000 4 rw-p anon\nadvise 10 0x7f0000000000 4 collapse\n"
      "advise 10 0x7f0000000000 4 collapse\nmremap 10 0x7f0000000000 4 0x7f1000000000 4 dontunmap\n"
      "fault 10 0x7e0000000000 r\nadvise 10 0x7f0000000000 2 populate_write\n");
  const auto& s = r->stats();
  EXPECT_EQ(s.unsupported.at("advise collapse"), 2U);
  EXPECT_EQ(s.unsupported.at("mremap dontunmap"), 1U);
  EXPECT_EQ(s.refused.at("fault"), 1U) << "a fault outside every VMA";
  ASSERT_EQ(s.first_refusals.size(), 1U);
  EXPECT_EQ(s.first_refusals[0], "fault 10 0x7e0000000000: refused: Bad address");
  EXPECT_EQ(r->take("now").processes[0].pages.size(), 2U) << "MADV_POPULATE_WRITE faulted two pages in";
}

TEST(Replay, ATraceThatContradictsItselfIsAnError) {
  EXPECT_THROW(replayed("fault 10 0x7f0000000000 r\n"), replay_error);
  EXPECT_THROW(replayed("exec 10\nfork 10 10\n"), replay_error);
  EXPECT_THROW(replayed("exec 10\nmap 10 0x7f0000000000 1 r--p file 4 0\n"), replay_error);
}

// ---- compare() -----------------------------------------------------------------------------

ev_snapshot two_sharers() {
  ev_snapshot s{"s", {}};
  snap_vma v{A, page_addr(A, 2), {true, true, false, false}, false, {}, {}};
  s.processes.push_back({1, {v}, {{A, page_state::anon, 50, false}, {page_addr(A, 1), page_state::anon, 51, true}}});
  s.processes.push_back({2, {v}, {{A, page_state::anon, 50, false}}});
  return s;
}

std::vector<std::string> causes(const std::vector<difference>& d) {
  std::vector<std::string> out;
  for (const auto& x : d) out.push_back(x.cause);
  return out;
}

TEST(ReplayCompare, FramesAreComparedBySharingNotByNumber) {
  auto want = two_sharers();
  auto got = want;
  for (auto& p : got.processes)
    for (auto& pg : p.pages) pg.frame += 1000;  // other numbers, the same partition
  EXPECT_TRUE(compare(want, got).empty());

  got.processes[1].pages[0].frame = 2000;  // the child no longer shares the parent's frame
  EXPECT_EQ(causes(compare(want, got)), std::vector<std::string>{"sharing"});
}

TEST(ReplayCompare, EachDifferenceHasItsCause) {
  auto want = two_sharers();
  auto got = want;
  got.processes[0].pages[1].exclusive = false;
  got.processes[0].vmas[0].perms.write = false;
  got.processes[1].pages.clear();
  got.processes[1].pages.push_back({page_addr(A, 1), page_state::zero, 0, false});
  const auto d = compare(want, got);
  EXPECT_EQ(causes(d), (std::vector<std::string>{"vma", "anon-exclusive", "page-missing", "page-extra"}));
  EXPECT_EQ(d[0].text,
            "task 1: vma 0x7f0000000000-0x7f0000002000 rw-p anon in the trace, 0x7f0000000000-0x7f0000002000 r--p "
            "anon in the replay");
  got.processes.pop_back();
  EXPECT_EQ(causes(compare(want, got)).back(), "process");
}

// ---- the corpus, as traces ------------------------------------------------------------------

std::vector<std::string> corpus() { return testing::corpus_names(RMAPKIT_SCENARIO_DIR); }

/// The trace of corpus scenario @name, in @e.
std::string trace_of(const std::string& name, encoding e) {
  auto parsed = scenario::parse_file(std::string(RMAPKIT_SCENARIO_DIR) + "/" + name + ".rmap");
  EXPECT_TRUE(parsed) << parsed.error().str();
  auto prog = scenario::resolve(*parsed);
  EXPECT_TRUE(prog) << prog.error().str();
  std::ostringstream out, err;
  writer w(out, e, scenario_header());
  EXPECT_EQ(trace_scenario(*prog, w, err), 0) << err.str();
  return out.str();
}

/// Each snapshot's differences, replayed under @design; the count of snapshots in @checked.
std::vector<difference> replay_differences(const std::string& trace, const std::string& design, int& checked) {
  std::istringstream in(trace);
  reader rd(in, "trace");
  replayer r({design, true});
  std::vector<difference> out;
  checked = 0;
  while (auto rec = rd.next()) {
    if (const auto* want = std::get_if<ev_snapshot>(&rec->ev)) {
      ++checked;
      for (auto& d : compare(*want, r.take(want->label))) out.push_back(std::move(d));
    } else {
      r.apply(*rec);
    }
  }
  EXPECT_TRUE(r.stats().refused.empty() && r.stats().unsupported.empty());
  return out;
}

class ReplayCorpus : public ::testing::TestWithParam<std::string> {};

TEST_P(ReplayCorpus, TheScenariosTraceReplaysToEverySnapshotInBothForms) {
  for (auto e : {encoding::text, encoding::binary}) {
    int checked = 0;
    auto d = replay_differences(trace_of(GetParam(), e), "linux-6", checked);
    EXPECT_GT(checked, 0) << "every corpus scenario checks something";
    EXPECT_TRUE(d.empty()) << d.front().cause << ": " << d.front().text;
  }
}

TEST_P(ReplayCorpus, EveryDesignReplaysItAlike) {
  const auto trace = trace_of(GetParam(), encoding::binary);
  for (const auto& design : mm::anon_rmap_designs()) {
    int checked = 0;
    auto d = replay_differences(trace, std::string(design), checked);
    if (GetParam() == "113_madvise_free_shared_by_fork" &&
        (design.starts_with("linux-2.6.7") || design.starts_with("pte-chain"))) {
      // Which lazily freed mappings reclaim drops depends on the walk's order (docs/designs.md):
      // newest first, the parent keeps its pages.
      EXPECT_FALSE(d.empty()) << design;
      continue;
    }
    EXPECT_TRUE(d.empty()) << design << ": " << d.front().cause << ": " << d.front().text;
  }
}

TEST_P(ReplayCorpus, FollowedAsTheScenariosRecordingItPrintsTheExpectedReport) {
  // A trace made from the scenario holds every access, where a recording holds the faults:
  // both are followed (tests/replay/scenario_replay_test.cc; the kernel's: record_test.cc).
  const auto base = std::string(RMAPKIT_SCENARIO_DIR) + "/" + GetParam();
  auto parsed = scenario::parse_file(base + ".rmap");
  ASSERT_TRUE(parsed) << parsed.error().str();
  auto prog = scenario::resolve(*parsed);
  ASSERT_TRUE(prog) << prog.error().str();
  std::istringstream in(trace_of(GetParam(), encoding::text));
  std::ostringstream out, err;
  ASSERT_EQ(replay_scenario(in, "trace", *prog, {}, out, err), 0) << err.str();
  EXPECT_EQ(out.str(), testing::slurp(base + ".expected"));
}

INSTANTIATE_TEST_SUITE_P(Scenarios, ReplayCorpus, ::testing::ValuesIn(corpus()),
                         [](const auto& tp) { return tp.param; });

}  // namespace
}  // namespace rmapkit::replay
