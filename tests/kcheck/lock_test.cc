// The live kernel back end as a neighbour: a run that must wait for the machine lock says
// for whom and waits, one given --no-wait exits with 75 at once, and a run whose output
// pipe closes (`| head`) ends quietly, as a filter should, with everything restored. And
// --kmem-counts counts the scenario's own objects, not the runner's.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "kcheck/host_guards.h"
#include "support/machine_state.h"
#include "support/subprocess.h"

namespace rmapkit::testing {
namespace {

using namespace std::chrono_literals;

class KernelNeighbour : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = kernel_unavailable(); !why.empty()) GTEST_SKIP() << "the kernel back end cannot run here: " << why;
  }
};

const char* ksm_scenario =
    "spawn P\nP: mmap A anon private pages=2\nP: madvise A mergeable\nP: write A value=3\nksm\ncheck\n";

TEST_F(KernelNeighbour, NoWaitExitsWith75NamingTheHolderAndAWaitingRunSaysForWhom) {
  auto path = temp_file("lock-ksm.rmap", ksm_scenario);
  auto held = std::make_unique<kcheck::machine_lock>([] {});
  const auto holder = fmt::format("held by pid {} (", ::getpid());

  auto busy = run({rmapkit_bin(), "kernel", "--no-wait", path});
  EXPECT_EQ(busy.exit_code, 75);
  EXPECT_EQ(busy.out, "");
  EXPECT_NE(busy.err.find(holder), std::string::npos) << busy.err;

  child waiting({rmapkit_bin(), "kernel", path});
  ASSERT_TRUE(waiting.wait_for_err("waiting for the machine lock", 10s)) << waiting.err_so_far();
  EXPECT_NE(waiting.err_so_far().find(holder), std::string::npos) << waiting.err_so_far();
  held.reset();
  auto done = waiting.wait();
  EXPECT_EQ(done.exit_code, 0) << done.err;
  EXPECT_NE(done.out.find("anon ksm"), std::string::npos) << done.out;
}

TEST_F(KernelNeighbour, AClosedOutputPipeEndsTheRunQuietlyAndRestoresEverything) {
  // Three reports of 4000 pages: far more than a pipe holds, so the run writes after
  // `head` has gone.
  auto path = temp_file("pipe.rmap", "spawn P\nP: mmap A anon private pages=4000\nP: write A\ncheck\ncheck\ncheck\n");
  const auto before = read_machine_state();
  const auto err_path = temp_file("pipe.err", "");
  auto o = run({"/bin/bash", "-c",
                fmt::format("'{}' kernel '{}' 2>'{}' | head -c 10 >/dev/null; exit ${{PIPESTATUS[0]}}", rmapkit_bin(),
                            path, err_path)});
  EXPECT_EQ(o.exit_code, 128 + SIGPIPE);
  EXPECT_EQ(slurp(err_path), "") << "a closed pipe is not an error to report";
  EXPECT_EQ(read_machine_state(), before);
}

TEST_F(KernelNeighbour, KmemCountsAreTheScenariosOwnNotTheRunnersAgents) {
  // fork-cow's anon_vmas (P's and C's) and AVCs, as the linux-6 design counts them and as
  // `compare --vs-kernel` measures them on the kernel; the agents' own exec and stack
  // allocations would add several of each.
  auto o = run({rmapkit_bin(), "kernel", "--kmem-counts", std::string(RMAPKIT_EXAMPLES_DIR) + "/fork-cow.rmap"});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_EQ(o.err, "kmem: anon_vma allocated=2 freed=2 anon_vma_chain allocated=9 freed=9\n");
}

}  // namespace
}  // namespace rmapkit::testing
