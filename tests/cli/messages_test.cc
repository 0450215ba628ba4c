// What the tool says besides reports: `diff` without root says that the kernel side cannot
// run instead of presenting the failure as the kernel's report; `--stats` is one
// `NAME VALUE` line per counter under a heading per kernel file; a long run shows a
// progress bar on a terminal and nothing when standard error is not one; a malformed
// RMAPKIT_PROGRESS_AFTER is an error that names it.
#include <cstdlib>

#include <string>

#include <gtest/gtest.h>

#include "support/subprocess.h"

namespace rmapkit::testing {
namespace {

TEST(CliMessages, DiffWithoutRootSaysTheKernelSideCannotRunAndComparesNothing) {
  auto path = temp_file("nonroot-diff.rmap", "spawn P\nP: mmap A anon private pages=1\nP: write A\ncheck\n");
  auto o = run({rmapkit_bin(), "diff", path}, drop_root);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_EQ(o.out, "") << "no diff may be printed: the kernel printed no report";
  EXPECT_EQ(o.err.rfind("rmapkit diff: the kernel side cannot run, so there is nothing to compare: not root", 0), 0U)
      << o.err;

  auto j = run({rmapkit_bin(), "diff", "--json", path}, drop_root);
  EXPECT_EQ(j.exit_code, 2);
  EXPECT_NE(j.out.find("\"kind\": \"error\""), std::string::npos) << j.out;
  EXPECT_NE(j.out.find("the kernel side cannot run"), std::string::npos) << j.out;
}

// What the model does not model yet (here migration of large folios, and collapse of shmem)
// it says so at the statement that asks for it, before it runs anything more, instead of
// answering with what it has.
TEST(CliMessages, TheModelStopsAtWhatItDoesNotModelSayingWhoRunsIt) {
  auto path = temp_file("v2.rmap", "thp anon=64k\nspawn P\nP: mmap A anon private pages=16 huge\nP: write A\ncheck\n");
  auto o = run({rmapkit_bin(), "run", "--migrate-everything", path});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_EQ(o.out, "");
  EXPECT_EQ(o.err,
            path + ":1: thp: migration of large folios is not modelled yet; `rmapkit kernel` runs this scenario\n");
  auto collapse = temp_file("v2-collapse.rmap",
                            "thp anon=2m shmem=2m\nspawn P\nP: mmap A anon shared pages=512 huge\n"
                            "P: write A\nP: madvise A collapse\n");
  auto k = run({rmapkit_bin(), "run", collapse});
  EXPECT_EQ(k.exit_code, 2);
  EXPECT_EQ(k.err, collapse +
                       ":5: madvise collapse: of shmem or file pages, not modelled yet; `rmapkit kernel` runs this "
                       "scenario\n");
}

// A shmem large folio a VM_LOCKED VMA maps in part cannot be reclaimed: reclaim's unmap stops
// at the locked mapping, met first in the interval tree's order, and nothing splits the
// folio. The kernel back end gives up on such a `reclaim` with this message (seen with
// `rmapkit kernel`: "reclaim: 3 pages could not be reclaimed"), and the model says the same.
TEST(CliMessages, ReclaimOfAShmemFolioALockedVmaMapsInPartIsRefusedAsOnTheKernel) {
  auto path = temp_file("v2-locked-reclaim.rmap",
                        "thp anon=none shmem=16k\nspawn P\nP: mmap A anon shared pages=4 huge\nP: fork C\n"
                        "C: read A\nC: mlock A[0]\nreclaim\ncheck\n");
  auto o = run({rmapkit_bin(), "run", "--check-invariants", path});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_EQ(o.err, path + ":7: reclaim: 3 pages could not be reclaimed\n");
  auto unlocked = temp_file("v2-reclaim.rmap",
                            "thp anon=none shmem=16k\nspawn P\nP: mmap A anon shared pages=4 huge\nP: fork C\n"
                            "C: read A\nreclaim\ncheck\n");
  auto u = run({rmapkit_bin(), "run", "--check-invariants", unlocked});
  EXPECT_EQ(u.exit_code, 0) << u.err;
  EXPECT_EQ(u.out, "check\nvma C A 0 4 rw-s shmem\nvma P A 0 4 rw-s shmem\nend\n");
}

// A PMD-mapped THP: every page says `pmd`, its count is the PMD's, its folio is order 9.
TEST(CliMessages, TheModelRunsAPmdMappedThp) {
  auto path = temp_file("v2-2m.rmap",
                        "thp anon=2m\nspawn P\nP: mmap A anon private pages=1024 huge\nP: read A[0]\n"
                        "P: write A[600]\ncheck\n");
  auto o = run({rmapkit_bin(), "run", "--check-invariants", path});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.out.find("page P A 0 zero pmd\n"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("page P A 511 zero pmd\n"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("page P A 512 frame=1 count=1 anon excl pmd folio=1 order=9 sub=0\n"), std::string::npos)
      << o.out;
  EXPECT_NE(o.out.find("page P A 1023 frame=512 count=1 anon excl pmd folio=1 order=9 sub=511\n"), std::string::npos)
      << o.out;
}

// The model runs anonymous large folios mapped by PTEs: the report names each page's folio.
TEST(CliMessages, TheModelRunsA64kFolio) {
  auto path = temp_file("v2-64k.rmap",
                        "thp anon=64k\nspawn P\nP: mmap A anon private pages=16 huge\nP: write A[1]\ncheck\n");
  auto o = run({rmapkit_bin(), "run", path});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.out.find("page P A 0 frame=1 count=1 anon excl folio=1 order=4 sub=0\n"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("page P A 15 frame=16 count=1 anon excl folio=1 order=4 sub=15\n"), std::string::npos) << o.out;
}

// diff of a version 2 scenario the model stops in: nothing runs, not even the kernel side,
// and the message says where the model stops and what does run it.
TEST(CliMessages, DiffOfAScenarioTheModelDoesNotModelComparesNothingAndRunsNothing) {
  auto path = temp_file("v2-diff.rmap",
                        "spawn P\nthp anon=2m shmem=2m\nP: mmap A anon shared pages=512 huge\nP: write A[0]\n"
                        "P: madvise A collapse\ncheck\n");
  auto o = run({rmapkit_bin(), "diff", path});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_EQ(o.out, "");
  EXPECT_EQ(o.err,
            "rmapkit diff: the model stops at line 5, so there is nothing to compare: madvise collapse: of shmem or "
            "file pages, not modelled yet; `rmapkit kernel` runs this scenario\n");
  auto j = run({rmapkit_bin(), "diff", "--json", path});
  EXPECT_EQ(j.exit_code, 2);
  EXPECT_NE(j.out.find("\"line\": 5"), std::string::npos) << j.out;
}

TEST(CliMessages, DiffTakesADesign) {
  auto path = temp_file("design-diff.rmap", "spawn P\ncheck\n");
  auto o = run({rmapkit_bin(), "diff", "--design", "no-such-design", path});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find("--design"), std::string::npos) << o.err;
}

TEST(CliMessages, StatsAreNameValueLinesUnderAHeadingPerKernelFile) {
  auto path = temp_file("stats.rmap",
                        "spawn P\nP: mmap A anon private pages=2\nP: madvise A mergeable\nP: write A value=1\n"
                        "ksm\ncheck\n");
  auto o = run({rmapkit_bin(), "run", "--stats", path});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  ASSERT_EQ(o.err.rfind("# /proc/vmstat\n", 0), 0U) << o.err;
  const auto ksm = o.err.find("# /sys/kernel/mm/ksm\n");
  ASSERT_NE(ksm, std::string::npos) << o.err;
  // Read at the end of the run, when every process has exited and no KSM page is left.
  EXPECT_NE(o.err.find("\npages_shared 0\npages_sharing 0\n", ksm), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("\nfull_scans ", ksm), std::string::npos) << o.err;
  // Every other line is one name and one number.
  std::size_t lines = 0;
  for (std::size_t at = 0; at < o.err.size();) {
    const auto end = o.err.find('\n', at);
    const auto line = o.err.substr(at, end - at);
    at = end + 1;
    if (line.starts_with("# ")) continue;
    ++lines;
    const auto space = line.find(' ');
    ASSERT_NE(space, std::string::npos) << line;
    EXPECT_EQ(line.find(' ', space + 1), std::string::npos) << line;
    EXPECT_EQ(line.find_first_not_of("0123456789", space + 1), std::string::npos) << line;
  }
  EXPECT_GT(lines, 7U);
}

/// A scenario of 403 statements.
std::string long_scenario() {
  std::string text = "spawn P\nP: mmap A anon private pages=64\n";
  for (int i = 0; i < 400; ++i) text += "P: write A[" + std::to_string(i % 64) + "]\n";
  return text + "check\n";
}

/// @cmd under script(1), which gives it a pseudo-terminal, with TERM=xterm and
/// RMAPKIT_PROGRESS_AFTER set to @after (unset when empty).
outcome run_on_terminal(const std::string& cmd, const std::string& after) {
  return run({"/usr/bin/script", "-qefc", cmd, "/dev/null"}, [after] {
    ::setenv("TERM", "xterm", 1);
    if (after.empty()) ::unsetenv("RMAPKIT_PROGRESS_AFTER");
    else ::setenv("RMAPKIT_PROGRESS_AFTER", after.c_str(), 1);
  });
}

TEST(CliMessages, ALongRunShowsAProgressBarOnATerminalOnly) {
  auto path = temp_file("long.rmap", long_scenario());
  // Not a terminal: nothing but the report, even when the bar would show at once.
  auto plain = run({rmapkit_bin(), "run", "--check-invariants", path},
                   [] { ::setenv("RMAPKIT_PROGRESS_AFTER", "0", 1); });
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(plain.err, "");
  // A terminal, with the bar due from the first statement (the run is "long" at once, so
  // the test does not depend on how fast this machine is): the bar, then the report on a
  // line the bar was erased from.
  auto tty = run_on_terminal(rmapkit_bin() + " run --check-invariants " + path, "0");
  ASSERT_EQ(tty.exit_code, 0) << tty.err;
  EXPECT_NE(tty.out.find("model: ["), std::string::npos) << tty.out.substr(0, 400);
  EXPECT_NE(tty.out.find("/403 statements ("), std::string::npos) << tty.out.substr(0, 400);
  EXPECT_NE(tty.out.find("\r\x1b[Kcheck\r\n"), std::string::npos) << "the report must start on a cleared line";
  EXPECT_NE(tty.out.find("end\r\n"), std::string::npos);
}

TEST(CliMessages, AShortRunOnATerminalShowsNoBar) {
  // Unset, the bar waits a second; these ten statements take milliseconds.
  auto path = temp_file("short.rmap", "spawn P\nP: mmap A anon private pages=4\nP: write A[0]\ncheck\n");
  auto tty = run_on_terminal(rmapkit_bin() + " run " + path, "");
  ASSERT_EQ(tty.exit_code, 0) << tty.out;
  EXPECT_EQ(tty.out.find("model: ["), std::string::npos) << tty.out;
  EXPECT_EQ(tty.out.rfind("check\r\n", 0), 0U) << tty.out;
}

TEST(CliMessages, AMalformedProgressDelayIsAnErrorNamingTheVariable) {
  auto path = temp_file("short.rmap", "spawn P\ncheck\n");
  for (const char* bad : {"soon", "-1", "1s", "", "nan"}) {
    auto o = run({rmapkit_bin(), "run", path}, [bad] { ::setenv("RMAPKIT_PROGRESS_AFTER", bad, 1); });
    EXPECT_EQ(o.exit_code, 1) << bad;
    EXPECT_EQ(o.out, "") << bad << ": no partial report";
    EXPECT_NE(o.err.find(std::string("RMAPKIT_PROGRESS_AFTER=") + bad + ": not a number of seconds"), std::string::npos)
        << o.err;
  }
}

}  // namespace
}  // namespace rmapkit::testing
