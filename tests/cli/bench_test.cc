// rmapkit bench as a user meets it: a table with one row per statement kind (in the order
// the scenario first uses it) and the number of such statements, then a total; bad input
// and refusals as everywhere else. Times are not asserted: they are the output.

#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/subprocess.h"

namespace rmapkit::testing {
namespace {

const char* const scenario_text =
    "spawn P\n"
    "P: mmap A anon private pages=8\n"
    "P: write A\n"
    "P: read A[0:2]\n"
    "P: fork C\n"
    "C: write A[0]\n"
    "C: write A[1]\n"
    "P: mremap A move\n"
    "C: munmap A[2:4]\n"
    "C: madvise A[4] dontneed\n"
    "check\n"
    "C: exit\n";

/// The table's rows: kind -> (count, the rest of the line's fields).
std::vector<std::pair<std::string, std::vector<std::string>>> rows(const std::string& out) {
  std::vector<std::pair<std::string, std::vector<std::string>>> r;
  std::istringstream in(out);
  std::string line;
  std::getline(in, line);  // title
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string kind, f;
    fields >> kind;
    std::vector<std::string> rest;
    while (fields >> f) rest.push_back(f);
    r.emplace_back(kind, rest);
  }
  return r;
}

TEST(CliBench, PrintsOneRowPerStatementKindWithItsCount) {
  auto path = temp_file("bench.rmap", scenario_text);
  auto o = run({rmapkit_bin(), "bench", "--repeat", "3", path});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_EQ(o.err, "");
  EXPECT_EQ(o.out.rfind("rmapkit bench " + path + ": 12 statements, 3 runs on the model (linux-6)\n", 0), 0U) << o.out;
  EXPECT_NE(o.out.find("kind "), std::string::npos);
  EXPECT_NE(o.out.find("model min..max"), std::string::npos);
  EXPECT_EQ(o.out.find("kernel"), std::string::npos) << "no kernel columns without --vs-kernel";
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"spawn", "1"},  {"mmap", "1"},    {"write", "3"}, {"read", "1"}, {"fork", "1"},  {"mremap-move", "1"},
      {"munmap", "1"}, {"madvise", "1"}, {"check", "1"}, {"exit", "1"}, {"total", "12"}};
  auto got = rows(o.out);
  ASSERT_EQ(got.size(), expected.size()) << o.out;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(got[i].first, expected[i].first) << o.out;
    ASSERT_FALSE(got[i].second.empty());
    EXPECT_EQ(got[i].second[0], expected[i].second) << got[i].first;
    // count, median, spread
    EXPECT_EQ(got[i].second.size(), 3U) << got[i].first;
    EXPECT_NE(got[i].second.back().find(".."), std::string::npos) << got[i].first;
  }
}

TEST(CliBench, BadScenarioGivesFileLineReasonBeforeRunning) {
  auto path = temp_file("bad-bench.rmap", "spawn P\nP: mmap A anon private pages=2\nQ: read A\n");
  auto o = run({rmapkit_bin(), "bench", path});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_EQ(o.err, path + ":3: unknown process Q\n");
  EXPECT_EQ(o.out, "");
}

TEST(CliBench, AStatementTheModelRefusesStopsTheBench) {
  // Only the memory manager knows that KSM merged the two equal pages.
  auto path = temp_file("refused-bench.rmap",
                        "spawn P\nP: mmap A anon private pages=2\nP: write A value=1\nP: madvise A mergeable\n"
                        "ksm\nreclaim\n");
  auto o = run({rmapkit_bin(), "bench", path});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_EQ(o.err, path + ":6: reclaim: refused while KSM pages exist (P at 0x100000000000)\n");
  EXPECT_EQ(o.out, "");
}

TEST(CliBench, RepeatMustBePositive) {
  auto path = temp_file("repeat-bench.rmap", "spawn P\n");
  EXPECT_EQ(run({rmapkit_bin(), "bench", "--repeat", "0", path}).exit_code, 2);
  EXPECT_EQ(run({rmapkit_bin(), "bench", "--design", "no-such-design", path}).exit_code, 2);
}

TEST(CliBench, KernelOnlyRefusesWithoutRootAndExcludesVsKernel) {
  auto path = temp_file("root-bench.rmap", "spawn P\ncheck\n");
  auto o = run({rmapkit_bin(), "bench", "--kernel-only", path}, drop_root);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_EQ(o.err.rfind("rmapkit bench: --kernel-only runs the scenario on the live kernel: not root", 0), 0U) << o.err;
  EXPECT_EQ(o.out, "");
  auto both = run({rmapkit_bin(), "bench", "--kernel-only", "--vs-kernel", path});
  EXPECT_NE(both.exit_code, 0);
  EXPECT_NE(both.err.find("--vs-kernel excludes --kernel-only"), std::string::npos) << both.err;
}

// The kernel's own time is a kernel back end figure: without one the flag is a usage error,
// refused before anything runs.
TEST(CliBench, KernelShareNeedsAKernelRun) {
  auto path = temp_file("share-bench.rmap", "spawn P\ncheck\n");
  auto o = run({rmapkit_bin(), "bench", "--kernel-share", path});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find("--kernel-share: needs --vs-kernel or --kernel-only"), std::string::npos) << o.err;
  EXPECT_EQ(o.out, "");
}

TEST(CliBench, VsKernelRefusesWithoutRootBeforeRunningAnything) {
  auto path = temp_file("root-bench.rmap", "spawn P\ncheck\n");
  auto o = run({rmapkit_bin(), "bench", "--vs-kernel", path}, drop_root);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_EQ(o.err.rfind("rmapkit bench: --vs-kernel runs the scenario on the live kernel: not root; run it as root", 0),
            0U)
      << o.err;
  EXPECT_EQ(o.out, "");
}

}  // namespace
}  // namespace rmapkit::testing
