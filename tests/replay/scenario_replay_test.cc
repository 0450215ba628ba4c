// A recording of the kernel runner read back as its scenario's report (replay_scenario()):
// the scenario's processes are found among the trace's tasks, the runner's own tasks and
// the agents' own memory are passed over, an access that does not fault and a statement no
// recording shows are made by the replay, and a trace that leaves out or adds a statement's
// event is named, with the statement it does not follow.
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "rmapkit/model/model.h"
#include "rmapkit/replay/scenario_replay.h"
#include "rmapkit/scenario/parser.h"

namespace rmapkit::replay {
namespace {

scenario::program program_of(const std::string& text) {
  auto parsed = scenario::parse(text, "s.rmap");
  EXPECT_TRUE(parsed) << parsed.error().str();
  auto prog = scenario::resolve(*parsed);
  EXPECT_TRUE(prog) << prog.error().str();
  return std::move(*prog);
}

/// What `rmapkit run` prints for @prog.
std::string run_report(const scenario::program& prog) {
  std::ostringstream out, err;
  EXPECT_EQ(model::run(prog, out, err), 0) << err.str();
  return out.str();
}

struct followed {
  int code = 0;
  std::string out, err;
  scenario_replay_stats stats;
};

followed follow(const std::string& records, const scenario::program& prog) {
  std::istringstream in("rtrace 1\nkernel k\npage-size 4096\nrecorder rmapkit record\n" + records);
  std::ostringstream out, err;
  scenario_replay_stats stats;
  const int code = replay_scenario(in, "t.rtrace", prog, {}, out, err, &stats);
  return {code, out.str(), err.str(), stats};
}

// Slot 0, where the scenario's first region is placed (docs/scenario-format.md, "Placement").
constexpr const char* FORK_SCENARIO =
    "spawn P\n"
    "P: mmap A anon private pages=2\n"
    "P: write A[0]\n"
    "P: fork C\n"
    "check after_fork\n"
    "C: read A[0]\n"
    "C: write A[1]\n"
    "check after_child\n";

// What a recording of `rmapkit kernel` running FORK_SCENARIO holds: the runner (500) with its
// own memory, the agent it forks and execs (501) with its own, the child the agent forks
// (502), and the faults only where the kernel faulted (C's read of A[0] does not: fork copied
// the PTE).
const std::string FORK_RECORDING =
    "@1 exec 500\n"
    "@2 map 500 0x7f0000000000 4 rw-p anon\n"
    "@3 fault 500 0x7f0000000000 w\n"
    "@4 fork 500 501\n"
    "@5 exec 501\n"
    "@6 map 501 0x7f1000000000 2 rw-p anon\n"
    "@7 fault 501 0x7f1000000000 w\n"
    "@8 map 501 0x100000000000 2 rw-p anon\n"
    "@9 advise 501 0x100000000000 2 nohugepage\n"
    "@10 fault 501 0x100000000000 w\n"
    "@11 fork 501 502\n"
    "@12 fault 502 0x7f1000000000 w\n"
    "@13 fault 502 0x100000001000 w\n"
    "@14 exit 502\n"
    "@15 exit 501\n"
    "@16 exit 500\n";

TEST(ScenarioReplay, ARecordingOfTheRunnerPrintsTheScenariosReport) {
  const auto prog = program_of(FORK_SCENARIO);
  const auto f = follow(FORK_RECORDING, prog);
  ASSERT_EQ(f.code, 0) << f.err;
  EXPECT_EQ(f.out, run_report(prog));
  EXPECT_EQ(f.stats.records, 16U);
  EXPECT_EQ(f.stats.followed, 5U) << "P's map and the agent's nohugepage advice, P's write, the fork, C's write";
  EXPECT_EQ(f.stats.processes, 2U);
  EXPECT_EQ(f.stats.unseen, 1U) << "C's read of A[0]";
  EXPECT_NE(f.err.find("2 of its processes; made as the scenario says: 1 accesses that did not fault"),
            std::string::npos)
      << f.err;
}

TEST(ScenarioReplay, TheRunnersOwnMappingsThatReachIntoTheSlotsAreNotTheScenarios) {
  // An ASan build of the runner maps its shadow from below the slot area into it.
  auto trace = FORK_RECORDING;
  trace.insert(trace.find("@3 fault"),
               "@2 map 500 0x2008fff7000 3758030849 rw-p anon fixed noreserve\n@2 fault 500 0x10000370c000 r\n");
  const auto prog = program_of(FORK_SCENARIO);
  const auto f = follow(trace, prog);
  ASSERT_EQ(f.code, 0) << f.err;
  EXPECT_EQ(f.out, run_report(prog));
}

TEST(ScenarioReplay, AnAccessThatDoesNotFaultStillSetsTheAccessedBit) {
  // `report smaps`: Referenced counts C's read of A[0], which no event shows.
  const auto prog = program_of(std::string("report smaps\n") + FORK_SCENARIO);
  const auto f = follow(FORK_RECORDING, prog);
  ASSERT_EQ(f.code, 0) << f.err;
  EXPECT_EQ(f.out, run_report(prog));
}

TEST(ScenarioReplay, AStatementsMissingEventIsNamed) {
  auto trace = FORK_RECORDING;
  trace.erase(trace.find("@13 fault"), std::string("@13 fault 502 0x100000001000 w\n").size());
  const auto f = follow(trace, program_of(FORK_SCENARIO));
  EXPECT_EQ(f.code, 1);
  EXPECT_NE(f.err.find("t.rtrace:"), std::string::npos) << f.err;
  EXPECT_NE(f.err.find("`exit 502` does not follow the scenario"), std::string::npos) << f.err;
  EXPECT_NE(f.err.find("line 7 (`C: write A[1]`) expects `fault 502 0x100000001000 w` by C"), std::string::npos)
      << f.err;
  EXPECT_EQ(f.out.find("after_child"), std::string::npos) << "no report past the divergence";
}

TEST(ScenarioReplay, AnEventInTheSlotsNoStatementMakesIsNamed) {
  auto trace = FORK_RECORDING;
  trace.insert(trace.find("@11 fork"), "@10 unmap 501 0x100000001000 1\n");
  const auto f = follow(trace, program_of(FORK_SCENARIO));
  EXPECT_EQ(f.code, 1);
  EXPECT_NE(f.err.find("`unmap 501 0x100000001000 1` does not follow the scenario: next, line 4 (`P: fork C`)"),
            std::string::npos)
      << f.err;
}

TEST(ScenarioReplay, ATraceThatEndsEarlyIsNamed) {
  const auto f = follow("@1 exec 500\n@2 fork 500 501\n@3 exec 501\n", program_of(FORK_SCENARIO));
  EXPECT_EQ(f.code, 1);
  EXPECT_NE(f.err.find("the trace ends, but line 2 (`P: mmap A anon private pages=2`) expects `map 1000 "
                       "0x100000000000 2 rw-p anon` by P (a task not seen yet, 1000 here)"),
            std::string::npos)
      << f.err;
}

TEST(ScenarioReplay, ABadTraceIsAnErrorOfItsOwn) {
  const auto f = follow("@1 exec 500\n@2 map 500 nowhere\n", program_of(FORK_SCENARIO));
  EXPECT_EQ(f.code, 2);
  EXPECT_NE(f.err.find("t.rtrace:6:"), std::string::npos) << f.err;
}

TEST(ScenarioReplay, KsmMergesTheValuesTheScenarioWrites) {
  // A recording knows a fault, not the byte written: the scenario's `value=7` makes both pages
  // equal, and the replay's `ksm` (which no recording shows) merges them.
  const auto prog = program_of(
      "spawn P\nP: mmap A anon private pages=2\nP: madvise A mergeable\nP: write A value=7\nksm\ncheck\n");
  const auto f = follow(
      "@1 exec 500\n@2 fork 500 501\n@3 exec 501\n"
      "@4 map 501 0x100000000000 2 rw-p anon\n@5 advise 501 0x100000000000 2 nohugepage\n"
      "@6 advise 501 0x100000000000 2 mergeable\n"
      "@7 fault 501 0x100000000000 w\n@8 fault 501 0x100000001000 w\n@9 exit 501\n",
      prog);
  ASSERT_EQ(f.code, 0) << f.err;
  EXPECT_EQ(f.out, run_report(prog));
  EXPECT_NE(f.out.find("count=2 anon ksm"), std::string::npos) << f.out;
  EXPECT_EQ(f.stats.made, 1U) << "the ksm";
}

TEST(ScenarioReplay, TwoAgentsAreToldApartByTheirSlots) {
  // Q acts first, though P was spawned first: each agent is the process whose region it maps.
  const auto prog = program_of(
      "spawn P\nspawn Q\nQ: mmap B anon private pages=1\nP: mmap A anon private pages=1\n"
      "Q: write B\nP: read A\ncheck\n");
  const auto f = follow(
      "@1 exec 500\n@2 fork 500 501\n@3 exec 501\n@4 fork 500 502\n@5 exec 502\n"
      "@6 map 502 0x100000000000 1 rw-p anon\n@7 map 501 0x100040000000 1 rw-p anon\n"
      "@8 fault 502 0x100000000000 w\n@9 fault 501 0x100040000000 r\n",
      prog);
  ASSERT_EQ(f.code, 0) << f.err;
  EXPECT_EQ(f.out, run_report(prog));
}

}  // namespace
}  // namespace rmapkit::replay
