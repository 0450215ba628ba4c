// rmapkit bench --vs-kernel on the live kernel: every row gets the kernel's median and
// spread and the kernel/model ratio. Times themselves are not asserted.
#include <cstdint>
#include <set>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/machine_state.h"
#include "support/subprocess.h"

namespace rmapkit::testing {
namespace {

TEST(KernelBench, VsKernelAddsTheKernelColumnsAndTheRatio) {
  if (auto why = kernel_unavailable(); !why.empty()) GTEST_SKIP() << "the kernel back end cannot run here: " << why;
  auto path = temp_file("kbench.rmap",
                        "spawn P\nP: mmap A anon private pages=16\nP: write A\nP: fork C\nC: write A[0:4]\n"
                        "P: munmap A[8:16]\nC: exit\ncheck\n");
  auto o = run({rmapkit_bin(), "bench", "--vs-kernel", "--repeat", "2", path});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_EQ(
      o.out.rfind("rmapkit bench " + path + ": 8 statements, 2 runs on the model (linux-6) and on the kernel\n", 0), 0U)
      << o.out;
  EXPECT_NE(o.out.find("kernel/model"), std::string::npos) << o.out;
  std::istringstream in(o.out);
  std::string line;
  std::getline(in, line);
  std::getline(in, line);
  int n = 0;
  for (; std::getline(in, line); ++n) {
    // kind count, model median, spread, kernel median, spread, ratio
    std::istringstream fields(line);
    std::string f, last;
    int count = 0;
    while (fields >> f) {
      ++count;
      last = f;
    }
    EXPECT_EQ(count, 7) << line;
    EXPECT_EQ(last.back(), 'x') << line;
  }
  EXPECT_EQ(n, 8) << o.out;  // spawn mmap write fork munmap exit check, then total
}

// --kernel-only times what the model cannot run yet: a version 2 scenario. Only the
// kernel's columns, and the JSON form has no model samples.
TEST(KernelBench, KernelOnlyTimesAVersion2ScenarioWithTheKernelsColumnsAlone) {
  if (auto why = kernel_unavailable(); !why.empty()) GTEST_SKIP() << "the kernel back end cannot run here: " << why;
  const std::string path = std::string(RMAPKIT_BENCH_DIR) + "/thp-64k.rmap";
  auto o = run({rmapkit_bin(), "bench", "--kernel-only", "--repeat", "2", path});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_EQ(o.out.rfind("rmapkit bench " + path + ": 21 statements, 2 runs on the kernel only\n", 0), 0U) << o.out;
  EXPECT_EQ(o.out.find("model"), std::string::npos) << o.out;
  int rows = 0;
  std::istringstream in(o.out);
  std::string line;
  std::getline(in, line);
  std::getline(in, line);
  for (; std::getline(in, line); ++rows) {
    std::istringstream fields(line);
    std::string f;
    int count = 0;
    while (fields >> f) ++count;
    EXPECT_EQ(count, 4) << line;  // kind, count, median, spread
  }
  EXPECT_EQ(rows, 9) << o.out;  // thp spawn mmap write fork exit munmap check, then total
  auto j = run({rmapkit_bin(), "bench", "--kernel-only", "--repeat", "1", "--json", path});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  EXPECT_NE(j.out.find("\"kernel_only\": true"), std::string::npos) << j.out;
  EXPECT_EQ(j.out.find("\"model\""), std::string::npos) << j.out;
}

// --kernel-share: the kernel's own time for fork, exit and the system call statements, from
// its tracepoints. It is part of what the agents or the controller time around the same
// statement, so in every run it is above zero and at most that; kinds the tracepoints
// cannot time (a fault has no exit tracepoint) have none. The text form adds its columns.
TEST(KernelBench, KernelShareTimesForkExitAndSystemCallsWithinWhatTheRunnerTimes) {
  if (auto why = kernel_unavailable(); !why.empty()) GTEST_SKIP() << "the kernel back end cannot run here: " << why;
  auto path = temp_file("kshare.rmap",
                        "spawn P\nP: mmap A anon private pages=64\nP: write A\nP: fork C\nC: write A[0:4]\n"
                        "P: mprotect A[0:8] r\nP: munmap A[32:64]\nC: exit\ncheck\n");
  auto o = run({rmapkit_bin(), "bench", "--vs-kernel", "--kernel-share", "--repeat", "3", "--json", path});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  auto j = nlohmann::json::parse(o.out);
  EXPECT_EQ(j["kernel_share"], true);
  std::set<std::string> shared;
  for (const auto& row : j["kinds"]) {
    const std::string kind = row["kind"];
    if (!row.contains("kernel_share")) continue;
    shared.insert(kind);
    const auto& share = row["kernel_share"]["runs_ns"];
    const auto& whole = row["kernel"]["runs_ns"];
    ASSERT_EQ(share.size(), 3U) << kind;
    for (std::size_t r = 0; r < 3; ++r) {
      EXPECT_GT(share[r].get<std::int64_t>(), 0) << kind << " run " << r;
      EXPECT_LE(share[r].get<std::int64_t>(), whole[r].get<std::int64_t>()) << kind << " run " << r;
    }
  }
  EXPECT_EQ(shared, (std::set<std::string>{"mmap", "fork", "mprotect", "munmap", "exit"})) << o.out;
  EXPECT_TRUE(j["errors"].empty()) << o.out;
  ASSERT_TRUE(j["total"].contains("kernel_share"));

  auto t = run({rmapkit_bin(), "bench", "--vs-kernel", "--kernel-share", "--repeat", "1", path});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_NE(t.out.find("share/model"), std::string::npos) << t.out;
}

}  // namespace
}  // namespace rmapkit::testing
