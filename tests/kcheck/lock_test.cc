// The live kernel back end as a neighbour: a run that must wait for the machine lock says
// for whom and waits, one given --no-wait exits with 75 at once, and a run whose output
// pipe closes (`| head`) ends quietly, as a filter should, with everything restored. And
// --kmem-counts counts the scenario's own objects, not the runner's.
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "kcheck/host_guards.h"
#include "support/machine_state.h"
#include "support/subprocess.h"

namespace rmapkit::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

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

// Four processes share 100000 anon pages: reclaim takes several passes of about a second,
// long enough to kill the run in the middle.
const char* big_reclaim =
    "spawn P\nP: mmap A anon private pages=100000\nP: write A\nP: fork C1\nP: fork C2\nP: fork C3\nreclaim\n"
    "check after_reclaim\n";
const char* plain = "spawn P\nP: mmap A anon private pages=1\nP: write A\ncheck\n";

/// Polls @done every 10 ms for up to @limit.
template <typename Done>
bool eventually(Done done, std::chrono::milliseconds limit) {
  for (auto end = std::chrono::steady_clock::now() + limit; std::chrono::steady_clock::now() < end;
       std::this_thread::sleep_for(10ms))
    if (done()) return true;
  return done();
}

/// Kills @c with SIGKILL and waits until its agents are gone too.
void sigkill(child& c) {
  ::kill(c.pid(), SIGKILL);
  (void)c.wait();
  EXPECT_TRUE(eventually([] { return read_machine_state().agents.empty(); }, 5000ms));
}

TEST_F(KernelNeighbour, ASwapFileLeftInAnotherSwapDirBySigkillIsRemovedByTheNextRun) {
  const auto dir = fs::path("/var/tmp") / fmt::format("rmapkit-other-swap-dir-{}", ::getpid());
  fs::create_directories(dir);
  const auto before = read_machine_state();
  child killed({rmapkit_bin(), "kernel", "--swap-dir", dir.string(), temp_file("killed.rmap", big_reclaim)});
  const auto in_dir = [&] { return slurp("/proc/swaps").find(dir.string() + "/rmapkit-swap-") != std::string::npos; };
  ASSERT_TRUE(eventually(in_dir, 30000ms)) << killed.err_so_far();
  sigkill(killed);
  ASSERT_TRUE(in_dir()) << "the killed run's swap file must still be on";

  // The next run uses the default --swap-dir, not the killed run's.
  auto next = run({rmapkit_bin(), "kernel", temp_file("plain.rmap", plain)});
  EXPECT_EQ(next.exit_code, 0) << next.err;
  EXPECT_FALSE(in_dir()) << slurp("/proc/swaps");
  EXPECT_TRUE(fs::is_empty(dir));
  // An agent the killed run was forking when SIGKILL came may still be on its way out: it
  // exits once it sees its channel closed (the 2026-12-04 CI saw one, under ASan).
  EXPECT_TRUE(eventually([&] { return read_machine_state() == before; }, 5000ms));
  EXPECT_EQ(read_machine_state(), before);
  fs::remove_all(dir);
}

TEST_F(KernelNeighbour, TracefsMountedByARunKilledWithSigkillIsUnmountedByTheNextRun) {
  const std::string tracefs = "/sys/kernel/tracing";
  const auto mounted = [&] { return fs::exists(tracefs + "/instances"); };
  const bool was_mounted = mounted();
  if (was_mounted && ::umount(tracefs.c_str()) != 0)
    GTEST_SKIP() << "tracefs at " << tracefs << " is in use: the runner will not mount it";
  child killed({rmapkit_bin(), "kernel", "--kmem-counts", temp_file("killed-kmem.rmap", big_reclaim)});
  const bool mounted_by_run = eventually(mounted, 30000ms);
  if (mounted_by_run) {
    // Let it get into its reclaim before the kill.
    std::this_thread::sleep_for(500ms);
    sigkill(killed);
    EXPECT_TRUE(mounted()) << "a run killed with SIGKILL cannot unmount";
    auto next = run({rmapkit_bin(), "kernel", temp_file("plain-kmem.rmap", plain)});
    EXPECT_EQ(next.exit_code, 0) << next.err;
    EXPECT_FALSE(mounted()) << "the next run must unmount the tracefs the killed run mounted";
  }
  if (was_mounted && !mounted()) (void)::mount("nodev", tracefs.c_str(), "tracefs", 0, nullptr);
  ASSERT_TRUE(mounted_by_run) << killed.err_so_far();
}

}  // namespace
}  // namespace rmapkit::testing
