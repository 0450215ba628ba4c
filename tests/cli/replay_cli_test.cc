// `rmapkit rtrace` and `rmapkit replay` as a user runs them: a scenario's trace replays with
// every snapshot agreeing (exit 0), a snapshot that differs is named with its causes (exit
// 1), bad input names the place and the reason (exit 2), and the two encodings convert
// into each other without loss.
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "support/subprocess.h"

namespace rmapkit::testing {
namespace {

const std::string SCENARIO =
    "spawn P\nP: mmap A anon private pages=2\nP: write A\nP: fork C\ncheck forked\nC: write A[0]\ncheck written\n";

std::string trace_file(const std::string& name) {
  auto path = temp_file(name + ".rmap", SCENARIO);
  auto trace = path + ".rtrace";
  auto o = run({rmapkit_bin(), "rtrace", "from-scenario", path, "-o", trace});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  return trace;
}

TEST(CliReplay, AScenariosTraceReplaysWithEverySnapshotAgreeing) {
  auto o = run({rmapkit_bin(), "replay", "--check", trace_file("agree")});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.out.find("replayed 6 events on the model (linux-6)"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("snapshots: 2 checked, 0 differ"), std::string::npos) << o.out;
}

TEST(CliReplay, WithItsScenarioATracePrintsTheScenariosChecks) {
  const auto trace = trace_file("with-scenario");
  const auto scenario = trace.substr(0, trace.size() - std::string(".rtrace").size());
  auto o = run({rmapkit_bin(), "replay", trace, "--scenario", scenario});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_EQ(o.out, run({rmapkit_bin(), "run", scenario}).out);
  EXPECT_NE(o.err.find("6 records, 5 of them"), std::string::npos) << "all but the spawn's exec: " << o.err;
  auto c = run({rmapkit_bin(), "replay", trace, "--scenario", scenario, "--check"});
  EXPECT_EQ(c.exit_code, 2);
  EXPECT_NE(c.err.find("--check excludes --scenario"), std::string::npos) << c.err;
  auto m = run({rmapkit_bin(), "replay", trace, "--scenario", "/nonexistent.rmap"});
  EXPECT_EQ(m.exit_code, 2);
  EXPECT_NE(m.err.find("/nonexistent.rmap"), std::string::npos) << m.err;
}

TEST(CliReplay, ASnapshotThatDiffersIsNamedWithItsCauses) {
  auto text = slurp(trace_file("differ"));
  // The child's write broke COW: claim instead that it still shares the parent's frame.
  auto at = text.rfind("process 1001");
  ASSERT_NE(at, std::string::npos) << text;
  auto line = text.find("page ", at);
  auto excl = text.find(" excl\n", line);
  ASSERT_NE(excl, std::string::npos) << text;
  text.erase(excl, 5);
  auto path = temp_file("differ-edited.rtrace", text);
  auto o = run({rmapkit_bin(), "replay", "--check", path});
  EXPECT_EQ(o.exit_code, 1) << o.out << o.err;
  EXPECT_NE(o.out.find("snapshot 'written' differs"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("differs in 1 place\n  anon-exclusive 1\n  anon-exclusive: task 1001: 0x100000000000 is not "
                       "AnonExclusive in the trace, AnonExclusive in the replay\n"),
            std::string::npos)
      << o.out;
}

TEST(CliReplay, BadInputNamesThePlaceAndTheReason) {
  auto missing = run({rmapkit_bin(), "replay", "/nonexistent/t.rtrace"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_EQ(missing.err, "/nonexistent/t.rtrace: cannot open: No such file or directory\n");

  auto bad = temp_file("bad.rtrace",
                       "rtrace 1\nkernel k\npage-size 4096\nrecorder r\nexec 5\nmap 5 0x1000 1 rw-q anon\n");
  auto o = run({rmapkit_bin(), "replay", bad});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_EQ(o.err, bad + ":6: permissions 'rw-q': expected rw-p as in /proc/PID/maps\n");

  auto orphan = temp_file("orphan.rtrace", "rtrace 1\nkernel k\npage-size 4096\nrecorder r\nfork 5 6\n");
  auto p = run({rmapkit_bin(), "replay", orphan});
  EXPECT_EQ(p.exit_code, 2);
  EXPECT_EQ(p.err, orphan + ":5: fork: task 5 does not exist\n");

  auto scenario = temp_file("bad-scenario.rmap", "spawn P\nP: frob\n");
  auto q = run({rmapkit_bin(), "rtrace", "from-scenario", scenario});
  EXPECT_EQ(q.exit_code, 2);
  EXPECT_EQ(q.out, "");
}

TEST(CliReplay, TheEncodingsConvertIntoEachOtherWithoutLoss) {
  auto text = trace_file("convert");
  auto binary = text + ".bin";
  ASSERT_EQ(run({rmapkit_bin(), "rtrace", "convert", "--binary", text, "-o", binary}).exit_code, 0);
  EXPECT_LT(slurp(binary).size(), slurp(text).size());
  auto back = run({rmapkit_bin(), "rtrace", "convert", binary});
  EXPECT_EQ(back.exit_code, 0) << back.err;
  EXPECT_EQ(back.out, slurp(text));
  EXPECT_EQ(run({rmapkit_bin(), "replay", "--check", binary}).exit_code, 0);
}

TEST(CliReplay, UntilStopsAtTheTraceClockAndStateShowsWhereItStopped) {
  // Records carry their statement's line: line 4 is the fork, so --until 3 stops before it.
  auto o = run({rmapkit_bin(), "replay", "--until", "3", "--state", trace_file("until")});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.out.find("replayed 4 events"), std::string::npos) << o.out;
  EXPECT_EQ(o.out.find("process 1001"), std::string::npos) << "the child is not forked yet:\n" << o.out;
  EXPECT_NE(o.out.find("page 0x100000001000 anon"), std::string::npos) << o.out;
}

TEST(CliReplay, CompareOfATracePrintsEveryDesignsCosts) {
  const auto trace = trace_file("compare");
  auto o = run({rmapkit_bin(), "compare", trace});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.out.find(": 6 events replayed under 6 designs\n"), std::string::npos) << o.out;
  for (const char* d : {"linux-6", "linux-3.19", "linux-2.6.34", "linux-2.6.7", "pte-chain", "legoos"})
    EXPECT_NE(o.out.find(std::string("\n") + d + " "), std::string::npos) << d << "\n" << o.out;
  // Fork of a faulted VMA: the parent's anon_vma and AVC, the child's own and its two AVCs.
  EXPECT_NE(o.out.find("anon_vma 2 / 2 x 104 B (208 B), anon_vma_chain 3 / 3 x 64 B"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("pte_chain "), std::string::npos) << o.out;

  auto two = run({rmapkit_bin(), "compare", "--designs", "linux-6,pte-chain", trace});
  EXPECT_EQ(two.exit_code, 0) << two.err;
  EXPECT_NE(two.out.find("under 2 designs"), std::string::npos) << two.out;

  auto json = run({rmapkit_bin(), "compare", "--json", trace});
  EXPECT_EQ(json.exit_code, 2);
  EXPECT_EQ(json.err, "rmapkit compare: " + trace +
                          ": a trace takes --designs only (not --json, --vs-kernel or --file-designs)\n");
}

TEST(CliReplay, RecordWithoutRootSaysWhyAndRunsNothing) {
  auto marker = temp_file("record-nonroot.marker", "");
  auto o = run({rmapkit_bin(), "record", "-o", marker + ".rtrace", "--", "rm", marker}, drop_root);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_EQ(o.err, "rmapkit record: recording needs root (perf_event_open system-wide, cgroups, /proc/kpageflags)\n");
  EXPECT_EQ(slurp(marker), "") << "the command must not have run";
  EXPECT_TRUE(std::ifstream(marker).good());
}

}  // namespace
}  // namespace rmapkit::testing
