// The linux-6 design allocates and frees exactly the anon_vma and anon_vma_chain objects
// the kernel does (kmem tracepoints, the runner's own subtracted through the scenario's
// skeleton), for the fan-out and fork-chain workloads at several sizes, and tracing is
// left as it was found. The design lab's compare() does the counting on both sides.
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "rmapkit/lab/compare.h"
#include "rmapkit/scenario/parser.h"
#include "rmapkit/scenario/workloads.h"
#include "support/machine_state.h"

namespace rmapkit::testing {
namespace {

namespace sc = rmapkit::scenario;

void expect_kernel_counts(const std::string& name, const std::string& text) {
  if (auto why = kernel_unavailable(); !why.empty()) GTEST_SKIP() << "the kernel back end cannot run here: " << why;
  auto parsed = sc::parse(text, name);
  ASSERT_TRUE(parsed) << parsed.error().str();
  auto prog = sc::resolve(*parsed);
  ASSERT_TRUE(prog) << prog.error().str();
  auto before = read_machine_state();
  // A process whose address space another process held as it exited (a reader of
  // /proc/PID: ps, top, a monitor) is torn down later by that one, untraced, and the next
  // fork may not reuse its anon_vmas: the runner refuses such counts (kcheck/tracefs.h,
  // freed_any()). Such a reader is another program's doing, not the run's: measure again.
  auto r = lab::compare(*prog, {.designs = {"linux-6"}, .vs_kernel = true});
  for (int again = 0; again < 3 && r.errors.find("held its address space") != std::string::npos; ++again)
    r = lab::compare(*prog, {.designs = {"linux-6"}, .vs_kernel = true});
  ASSERT_EQ(r.exit_code, 0) << name << "\n" << r.errors << r.kernel_unavailable.value_or("");
  ASSERT_TRUE(r.kernel);
  ASSERT_EQ(r.designs.size(), 1U);
  EXPECT_EQ(lab::model_counts(r.designs[0]), *r.kernel)
      << name << ": the linux-6 design's " << sc::format(lab::model_counts(r.designs[0])) << "the kernel's "
      << sc::format(*r.kernel);
  EXPECT_EQ(r.kernel_agrees(), true);
  EXPECT_EQ(read_machine_state(), before);
}

class KmemFanout : public ::testing::TestWithParam<std::tuple<int, int>> {};
TEST_P(KmemFanout, Linux6AllocatesWhatTheKernelAllocates) {
  auto [children, vmas] = GetParam();
  expect_kernel_counts(fmt::format("fanout-{}x{}.rmap", children, vmas),
                       sc::generate_fanout({.children = static_cast<unsigned>(children),
                                            .vmas = static_cast<unsigned>(vmas),
                                            .pages = 2,
                                            .reclaim = false}));
}
INSTANTIATE_TEST_SUITE_P(Sizes, KmemFanout, ::testing::Combine(::testing::Values(1, 8, 32), ::testing::Values(1, 3)));

class KmemForkChain : public ::testing::TestWithParam<int> {};
TEST_P(KmemForkChain, Linux6AllocatesWhatTheKernelAllocates) {
  expect_kernel_counts(fmt::format("forkchain-{}.rmap", GetParam()),
                       sc::generate_forkchain({.generations = static_cast<unsigned>(GetParam()), .pages = 8}));
}
INSTANTIATE_TEST_SUITE_P(Generations, KmemForkChain, ::testing::Values(2, 20, 100));

TEST(KmemBuildStorm, Linux6AllocatesWhatTheKernelAllocates) {
  expect_kernel_counts("buildstorm.rmap", sc::generate_buildstorm({.jobs = 16, .parallel = 3, .pages = 4}));
}

}  // namespace
}  // namespace rmapkit::testing
