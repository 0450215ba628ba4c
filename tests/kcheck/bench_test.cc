// rmapkit bench --vs-kernel on the live kernel: every row gets the kernel's median and
// spread and the kernel/model ratio. Times themselves are not asserted.
#include <sstream>
#include <string>

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace rmapkit::testing
