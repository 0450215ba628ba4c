// The linux-6 design allocates and frees exactly the anon_vma and anon_vma_chain objects
// the kernel does (kmem tracepoints, the runner's own subtracted through the scenario's
// skeleton), for the fan-out and fork-chain workloads at several sizes, and tracing is
// left as it was found.
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "support/machine_state.h"
#include "support/subprocess.h"

namespace rmapkit::testing {
namespace {

void expect_kernel_counts(const std::string& gen_args) {
  if (auto why = kernel_unavailable(); !why.empty()) GTEST_SKIP() << "the kernel back end cannot run here: " << why;
  std::vector<std::string> argv{rmapkit_bin(), "gen"};
  std::istringstream words(gen_args);
  for (std::string w; words >> w;) argv.push_back(w);
  auto gen = run(argv);
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  auto path = temp_file("kmem.rmap", gen.out);
  auto before = read_machine_state();
  auto r = run({rmapkit_bin(), "compare", "--designs", "linux-6", "--vs-kernel", path});
  EXPECT_EQ(r.exit_code, 0) << gen_args << "\n" << r.out << r.err;
  EXPECT_NE(r.out.find("the linux-6 design allocates what the kernel allocates"), std::string::npos) << r.out;
  EXPECT_EQ(read_machine_state(), before);
}

class KmemFanout : public ::testing::TestWithParam<std::tuple<int, int>> {};
TEST_P(KmemFanout, Linux6AllocatesWhatTheKernelAllocates) {
  auto [children, vmas] = GetParam();
  expect_kernel_counts(fmt::format("fanout --children {} --vmas {} --pages 2 --no-reclaim", children, vmas));
}
INSTANTIATE_TEST_SUITE_P(Sizes, KmemFanout, ::testing::Combine(::testing::Values(1, 8, 32), ::testing::Values(1, 3)));

class KmemForkChain : public ::testing::TestWithParam<int> {};
TEST_P(KmemForkChain, Linux6AllocatesWhatTheKernelAllocates) {
  expect_kernel_counts(fmt::format("forkchain --generations {} --pages 8", GetParam()));
}
INSTANTIATE_TEST_SUITE_P(Generations, KmemForkChain, ::testing::Values(2, 20, 100));

TEST(KmemBuildStorm, Linux6AllocatesWhatTheKernelAllocates) {
  expect_kernel_counts("buildstorm --jobs 16 --parallel 3 --pages 4");
}

}  // namespace
}  // namespace rmapkit::testing
