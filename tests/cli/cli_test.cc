// The tool as a user meets it: bad input gets FILE:LINE: reason on standard error and
// exit status 2, from `lint` and from `kernel` alike, before anything runs.
#include <regex>
#include <string>

#include <gtest/gtest.h>

#include "support/subprocess.h"

namespace rmapkit::testing {
namespace {

TEST(Cli, BadScenarioGivesFileLineReasonAndExit2) {
  auto path = temp_file("bad.rmap", "spawn P\nP: mmap A anon private pages=2\nQ: read A\n");
  for (const char* cmd : {"lint", "kernel"}) {
    auto o = run({rmapkit_bin(), cmd, path});
    EXPECT_EQ(o.exit_code, 2) << cmd;
    EXPECT_EQ(o.err, path + ":3: unknown process Q\n") << cmd;
    EXPECT_EQ(o.out, "") << cmd;
  }
}

TEST(Cli, MissingFileIsAClearError) {
  auto o = run({rmapkit_bin(), "kernel", "/nonexistent/s.rmap"});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_EQ(o.err, "/nonexistent/s.rmap: cannot open: No such file or directory\n");
}

TEST(Cli, BinaryFileIsRejected) {
  auto path = temp_file("bin.rmap", std::string("spawn P\n\0\x01", 10));
  auto o = run({rmapkit_bin(), "lint", path});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_EQ(o.err, path + ": not a text file (NUL byte)\n");
}

TEST(Cli, UnknownSubcommandAndMissingArgumentExit2) {
  auto u = run({rmapkit_bin(), "frobnicate", "x.rmap"});
  EXPECT_EQ(u.exit_code, 2);
  EXPECT_EQ(u.err,
            "rmapkit: unknown command 'frobnicate' (one of: kernel, run, diff, gen, compare, bench, lint, show, walk, "
            "html, replay, record, fuzz, rtrace)\n");
  auto g = run({rmapkit_bin(), "gen", "fanut"});
  EXPECT_EQ(g.exit_code, 2);
  EXPECT_EQ(g.err,
            "rmapkit gen: unknown command 'fanut' (one of: random, fanout, forkchain, fileshare, filewindows, ksm, "
            "buildstorm)\n");
  auto none = run({rmapkit_bin()});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_EQ(none.err,
            "rmapkit: a command is required (one of: kernel, run, diff, gen, compare, bench, lint, show, walk, html, "
            "replay, record, fuzz, rtrace)\n");
  auto rt = run({rmapkit_bin(), "rtrace"});
  EXPECT_EQ(rt.exit_code, 2);
  EXPECT_EQ(rt.err, "rmapkit rtrace: a command is required (one of: from-scenario, convert)\n");
  auto o = run({rmapkit_bin(), "kernel"});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find("FILE is required"), std::string::npos) << o.err;
}

TEST(Cli, VersionPrintsTheProjectVersion) {
  auto o = run({rmapkit_bin(), "--version"});
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_TRUE(std::regex_match(o.out, std::regex("rmapkit [0-9]+\\.[0-9]+\\.[0-9]+\n"))) << o.out;
  EXPECT_EQ(o.err, "");
}

TEST(Cli, LintSummarisesAGoodScenario) {
  auto path = temp_file("ok.rmap", "file F pages=2\nspawn P\nP: mmap A file F shared pages=2\nksm\n");
  auto o = run({rmapkit_bin(), "lint", path});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_EQ(o.out, path + ": 4 statements, 1 processes, 1 files, machine-wide (KSM, swap, THP)\n");
}

TEST(Cli, AgentRefusesToRunByHand) {
  auto o = run({RMAPKIT_AGENT_BIN});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find("not by hand"), std::string::npos);
}

}  // namespace
}  // namespace rmapkit::testing

namespace rmapkit::testing {
namespace {

TEST(Cli, RunPrintsTheModelsReportAndItsCounters) {
  auto path = temp_file("swap.rmap",
                        "spawn P\nP: mmap A anon private pages=2\nP: write A\nP: fork C\nreclaim\n"
                        "C: read A[0]\ncheck after\n");
  auto o = run({rmapkit_bin(), "run", "--check-invariants", "--stats", path});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_EQ(o.out,
            "check after\n"
            "vma C A 0 2 rw-p anon\n"
            "page C A 0 frame=1 count=1 anon swapcache\n"
            "page C A 1 swap=1\n"
            "vma P A 0 2 rw-p anon\n"
            "page P A 0 swap=2\n"
            "page P A 1 swap=1\n"
            "end\n");
  EXPECT_NE(o.err.find("pswpout 2\n"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("pswpin 1\n"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("pgsteal_anon 2\n"), std::string::npos) << o.err;
}

}  // namespace
}  // namespace rmapkit::testing
