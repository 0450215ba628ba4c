// The kernel back end leaves nothing behind: not when interrupted by SIGTERM halfway
// through a reclaim or by SIGINT during a KSM scan, not when a scenario process is
// killed under it, not when the kernel refuses a statement. And it says clearly when
// it cannot run at all.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "support/machine_state.h"
#include "support/subprocess.h"

namespace rmapkit::testing {
namespace {

using namespace std::chrono_literals;

class KernelRun : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = kernel_unavailable(); !why.empty()) GTEST_SKIP() << "the kernel back end cannot run here: " << why;
    _before = read_machine_state();
  }
  void expect_restored() { EXPECT_EQ(read_machine_state(), _before); }
  machine_state _before;
};

// Four processes share 100000 anon pages: reclaim takes several passes of about a second.
const char* big_reclaim = R"(spawn P
P: mmap A anon private pages=100000
P: write A
P: fork C1
P: fork C2
P: fork C3
reclaim
check after_reclaim
)";

// Two processes share 30000 equal pages: the scan takes long enough to be interrupted.
const char* big_ksm = R"(spawn P
P: mmap A anon private pages=30000
P: madvise A mergeable
P: write A value=7
P: fork C
C: write A value=7
ksm
check after_ksm
)";

// A scenario that needs no machine lock: what a run "of any kind" after a killed one is.
const char* plain = "spawn P\nP: mmap A anon private pages=1\nP: write A\ncheck\n";

/// Each kdamond's pid, by its directory: a restart gives it a new one.
std::map<std::string, std::string> kdamond_pids() {
  std::map<std::string, std::string> out;
  const std::string root = "/sys/kernel/mm/damon/admin/kdamonds/";
  const std::string nr = slurp(root + "nr_kdamonds");
  for (int k = 0, n = nr.empty() ? 0 : std::stoi(nr); k < n; ++k)
    out[std::to_string(k)] = slurp(root + std::to_string(k) + "/pid");
  return out;
}

/// Waits (up to 5 s) until the agents of a run killed with SIGKILL are gone too.
void wait_for_agents_to_go() {
  for (int i = 0; i < 500 && !read_machine_state().agents.empty(); ++i) std::this_thread::sleep_for(10ms);
}

TEST_F(KernelRun, SigtermHalfwayThroughReclaimRestoresEverything) {
  auto path = temp_file("reclaim.rmap", big_reclaim);
  child run({rmapkit_bin(), "kernel", "--trace", path});
  ASSERT_TRUE(run.wait_for_err(":7: reclaim", 60s)) << run.err_so_far();
  std::this_thread::sleep_for(30ms);
  ::kill(run.pid(), SIGTERM);
  auto o = run.wait();
  EXPECT_EQ(o.signal, SIGTERM) << o.err;
  EXPECT_NE(o.err.find("interrupted by TERM"), std::string::npos) << o.err;
  EXPECT_EQ(o.out.find("after_reclaim"), std::string::npos) << "reclaim finished before the signal: make it bigger";
  expect_restored();
}

// DAMON's schemes do `stat` while a run has swap (kcheck/damon.h), without a restart of
// their kdamond; a run killed with SIGKILL leaves them so, and the next locked run gives
// them back along with the other leftovers.
TEST_F(KernelRun, DamonSchemesPauseForASwapRunAndComeBackAfterSigkill) {
  // An action under kdamonds/K/contexts/..., and whether kdamond K was running.
  auto running_action = [&](const std::string& key) {
    return key.ends_with("/action") && _before.damon.at(key.substr(0, key.find("/contexts/")) + "/state") == "on";
  };
  bool acting = false;
  for (const auto& [key, value] : _before.damon) acting |= running_action(key) && value != "stat";
  if (!acting) GTEST_SKIP() << "no running DAMON scheme acts on pages on this machine";
  const auto pids = kdamond_pids();
  auto path = temp_file("reclaim.rmap", big_reclaim);
  child runner({rmapkit_bin(), "kernel", "--trace", path});
  ASSERT_TRUE(runner.wait_for_err(":7: reclaim", 60s)) << runner.err_so_far();
  const auto during = read_machine_state().damon;
  for (const auto& [key, value] : _before.damon) EXPECT_EQ(during.at(key), running_action(key) ? "stat" : value) << key;
  EXPECT_EQ(kdamond_pids(), pids) << "a kdamond keeps running, not restarted";
  ::kill(runner.pid(), SIGKILL);
  EXPECT_EQ(runner.wait().signal, SIGKILL);
  wait_for_agents_to_go();
  EXPECT_EQ(read_machine_state().damon, during) << "SIGKILL leaves the schemes paused";
  auto next = temp_file("next.rmap", "spawn P\nP: mmap A anon private pages=1\nP: write A\nP: madvise A pageout\n");
  auto o = run({rmapkit_bin(), "kernel", next});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  expect_restored();
}

// A run that prints smaps figures turns every running kdamond off (kcheck/damon.h): its
// sampling moves the accessed bits that `Referenced` counts. A run killed with SIGKILL
// leaves them off, and the next run of any kind turns them on again.
TEST_F(KernelRun, DamonStopsForASmapsRunAndComesBackAfterSigkill) {
  bool running = false;
  for (const auto& [key, value] : _before.damon) running |= key.ends_with("/state") && value == "on";
  if (!running) GTEST_SKIP() << "no kdamond runs on this machine";
  auto path = temp_file("smaps-reclaim.rmap", std::string("report smaps\n") + big_reclaim);
  child runner({rmapkit_bin(), "kernel", "--trace", path});
  ASSERT_TRUE(runner.wait_for_err(":8: reclaim", 60s)) << runner.err_so_far();
  const auto during = read_machine_state().damon;
  for (const auto& [key, value] : _before.damon)
    EXPECT_EQ(during.at(key), key.ends_with("/state") ? "off" : value)
        << key << " (off, and no action paused: nothing runs to act)";
  ::kill(runner.pid(), SIGKILL);
  EXPECT_EQ(runner.wait().signal, SIGKILL);
  wait_for_agents_to_go();
  EXPECT_EQ(read_machine_state().damon, during) << "SIGKILL leaves the kdamonds off";
  auto o = run({rmapkit_bin(), "kernel", temp_file("plain.rmap", plain)});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  expect_restored();
}

/// Waits (up to 2 s) until a run has tuned ksmd for its scan: its `ksm` has begun.
void wait_for_ksm_tuned() {
  for (int i = 0; i < 2000 && read_machine_state().ksm_knobs.at("sleep_millisecs") != "0"; ++i)
    std::this_thread::sleep_for(1ms);
}

TEST_F(KernelRun, SigintDuringKsmRestoresKnobs) {
  auto path = temp_file("ksm.rmap", big_ksm);
  child run({rmapkit_bin(), "kernel", "--trace", path});
  ASSERT_TRUE(run.wait_for_err(":7: ksm", 60s)) << run.err_so_far();
  wait_for_ksm_tuned();
  ASSERT_NE(read_machine_state().ksm_knobs, _before.ksm_knobs) << "the run had not tuned ksmd yet";
  std::this_thread::sleep_for(5ms);
  ::kill(run.pid(), SIGINT);
  auto o = run.wait();
  EXPECT_EQ(o.signal, SIGINT) << o.err;
  EXPECT_NE(o.err.find("interrupted by INT"), std::string::npos) << o.err;
  EXPECT_EQ(o.out.find("after_ksm"), std::string::npos) << "ksm finished before the signal: make it bigger";
  expect_restored();
}

// SIGKILL lets no destructor run: ksmd is left tuned for speed (sleep_millisecs=0,
// pages_to_scan=4000, smart_scan=0) or stopped. The knobs were recorded before they
// changed, and the next run, any run, even one that does not use KSM, puts them back
// before it starts.
TEST_F(KernelRun, SigkillDuringKsmIsUndoneByTheNextRunOfAnyKind) {
  auto path = temp_file("ksm.rmap", big_ksm);
  for (auto delay : {0ms, 20ms}) {
    child killed({rmapkit_bin(), "kernel", "--trace", path});
    ASSERT_TRUE(killed.wait_for_err(":7: ksm", 60s)) << killed.err_so_far();
    // Until the run has tuned ksmd for speed, then a moment more into the scan.
    wait_for_ksm_tuned();
    std::this_thread::sleep_for(delay);
    ::kill(killed.pid(), SIGKILL);
    EXPECT_EQ(killed.wait().signal, SIGKILL);
    wait_for_agents_to_go();
    EXPECT_NE(read_machine_state().ksm_knobs, _before.ksm_knobs) << "SIGKILL left KSM as the run had set it";
    auto o = run({rmapkit_bin(), "kernel", temp_file("plain.rmap", plain)});
    EXPECT_EQ(o.exit_code, 0) << o.err;
    expect_restored();
  }
}

// A version 2 run sets the THP knobs machine-wide: SIGKILL leaves them set, recorded, and
// the next run of any kind gives them back.
TEST_F(KernelRun, SigkillDuringALargeFolioRunIsUndoneByTheNextRunOfAnyKind) {
  const char* big_thp = R"(thp anon=64k
spawn P
P: mmap A anon private pages=120000 huge
P: write A
P: fork C
C: write A
check
)";
  auto path = temp_file("thp.rmap", big_thp);
  child killed({rmapkit_bin(), "kernel", "--trace", path});
  // The knobs were set at line 1; the writes after line 3 take a good part of a second.
  ASSERT_TRUE(killed.wait_for_err(":3: P: mmap", 60s)) << killed.err_so_far();
  ::kill(killed.pid(), SIGKILL);
  EXPECT_EQ(killed.wait().signal, SIGKILL);
  wait_for_agents_to_go();
  EXPECT_NE(read_machine_state().thp, _before.thp) << "SIGKILL left THP as the run had set it";
  auto o = run({rmapkit_bin(), "kernel", temp_file("plain.rmap", plain)});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  expect_restored();
}

// The same for what reclaim sets up: the swap file (and swap device), the memory cgroup,
// DAMON's paused schemes.
TEST_F(KernelRun, SigkillDuringReclaimIsUndoneByTheNextRunOfAnyKind) {
  auto path = temp_file("reclaim.rmap", big_reclaim);
  child killed({rmapkit_bin(), "kernel", "--trace", path});
  ASSERT_TRUE(killed.wait_for_err(":7: reclaim", 60s)) << killed.err_so_far();
  std::this_thread::sleep_for(30ms);
  ::kill(killed.pid(), SIGKILL);
  EXPECT_EQ(killed.wait().signal, SIGKILL);
  wait_for_agents_to_go();
  EXPECT_NE(read_machine_state(), _before) << "SIGKILL left the swap file behind";
  auto o = run({rmapkit_bin(), "kernel", temp_file("plain.rmap", plain)});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  expect_restored();
}

TEST_F(KernelRun, ScenarioProcessKilledUnderTheRunnerIsAnError) {
  auto path = temp_file("victim.rmap", R"(spawn P
P: mmap A anon private pages=100000
P: write A
P: write A
P: write A
check never
)");
  child run({rmapkit_bin(), "kernel", "--trace", path});
  ASSERT_TRUE(run.wait_for_err(":3: P: write A", 60s)) << run.err_so_far();
  for (const auto& pid : read_machine_state().agents) ::kill(std::stoi(pid), SIGKILL);
  auto o = run.wait();
  EXPECT_EQ(o.exit_code, 2) << o.err;
  EXPECT_NE(o.err.find("process P died unexpectedly"), std::string::npos) << o.err;
  EXPECT_EQ(o.out, "");
  expect_restored();
}

TEST_F(KernelRun, StatementTheKernelRefusesIsAScenarioError) {
  // The child inherits the parent's mlock split as two VMAs (fork does not merge), so
  // its region is not one VMA although nothing in the scenario says so.
  auto path = temp_file("refused.rmap", R"(spawn P
P: mmap A anon private pages=4
P: mlock A[0]
P: fork C
check split
C: mremap A pages=8
check never
)");
  auto o = run({rmapkit_bin(), "kernel", path});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_EQ(o.err, path + ":6: mremap: the region is not one VMA covering pages 0 to 3\n");
  EXPECT_NE(o.out.find("vma C A 0 1 rw-p anon\nvma C A 1 4 rw-p anon\n"), std::string::npos) << o.out;
  EXPECT_EQ(o.out.find("never"), std::string::npos) << "a statement after the failing one ran";
  expect_restored();
}

TEST_F(KernelRun, ReclaimIsRefusedWhileKsmPagesExist) {
  auto path = temp_file("ksm_reclaim.rmap", R"(spawn P
P: mmap A anon private pages=4
P: madvise A mergeable
P: write A value=3
ksm
reclaim
)");
  auto o = run({rmapkit_bin(), "kernel", path});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find(path + ":6: reclaim: refused while KSM pages exist"), std::string::npos) << o.err;
  expect_restored();
}

TEST_F(KernelRun, RefusesToRunWithoutRoot) {
  auto path = temp_file("plain.rmap", "spawn P\ncheck\n");
  auto o = run({rmapkit_bin(), "kernel", path}, drop_root);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_EQ(o.err.rfind("rmapkit kernel: not root; run it as root", 0), 0U) << o.err;
  EXPECT_EQ(o.err.find('\n'), o.err.size() - 1) << "not one line: " << o.err;
}

}  // namespace
}  // namespace rmapkit::testing
