// damon_guard on a directory tree shaped like /sys/kernel/mm/damon/admin: which schemes
// it pauses, what it writes, what it records, and how it gives everything back — also
// for a run that died without cleanup.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "kcheck/damon.h"
#include "kcheck/procfs.h"
#include "support/subprocess.h"

namespace rmapkit::kcheck {
namespace {

namespace fs = std::filesystem;
using rmapkit::testing::slurp;

void put(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

class DamonGuard : public ::testing::Test {
 protected:
  void SetUp() override {
    _root = fs::temp_directory_path() / ("rmapkit-damon-test-" + std::to_string(::getpid()));
    fs::remove_all(_root);
    _admin = _root / "admin";
    _records = _root / "records";
    fs::create_directories(_records);
    // kdamond 0 runs two schemes (pageout, stat) in one context; kdamond 1 is off.
    put(_admin / "kdamonds/nr_kdamonds", "2\n");
    put(kd(0) / "state", "on\n");
    put(kd(0) / "contexts/nr_contexts", "1\n");
    put(kd(0) / "contexts/0/schemes/nr_schemes", "2\n");
    put(scheme(0, 0) / "action", "pageout\n");
    put(scheme(0, 1) / "action", "stat\n");
    put(kd(1) / "state", "off\n");
    put(kd(1) / "contexts/nr_contexts", "1\n");
    put(kd(1) / "contexts/0/schemes/nr_schemes", "1\n");
    put(scheme(1, 0) / "action", "migrate_cold\n");
  }
  void TearDown() override { fs::remove_all(_root); }

  fs::path kd(int k) const { return _admin / "kdamonds" / std::to_string(k); }
  fs::path scheme(int k, int s) const { return kd(k) / "contexts/0/schemes" / std::to_string(s); }

  fs::path _root, _admin, _records;
};

TEST_F(DamonGuard, RunningSchemesDoStatUntilTheEndThenGetTheirActionsBack) {
  {
    damon_guard g(damon_hold::actions, _admin.string(), _records.string());
    EXPECT_EQ(g.paused(), 1U);
    EXPECT_EQ(slurp(scheme(0, 0) / "action"), "stat");
    EXPECT_EQ(slurp(kd(0) / "state"), "commit") << "the change is committed online, the kdamond not restarted";
    EXPECT_EQ(slurp(scheme(0, 1) / "action"), "stat\n") << "a stat scheme is left alone";
    EXPECT_EQ(slurp(scheme(1, 0) / "action"), "migrate_cold\n") << "a kdamond that is off is left alone";
    EXPECT_EQ(slurp(kd(1) / "state"), "off\n");
    EXPECT_EQ(slurp(g.record_path()), kd(0).string() + "\t" + scheme(0, 0).string() + "\tpageout\n");
    put(kd(0) / "state", "on\n");
  }
  EXPECT_EQ(slurp(scheme(0, 0) / "action"), "pageout");
  EXPECT_EQ(slurp(kd(0) / "state"), "commit");
  EXPECT_TRUE(fs::is_empty(_records)) << "the record is removed";
}

TEST_F(DamonGuard, NothingRunningMeansNothingWritten) {
  put(kd(0) / "state", "off\n");
  damon_guard g(damon_hold::actions, _admin.string(), _records.string());
  EXPECT_EQ(g.paused(), 0U);
  EXPECT_EQ(slurp(scheme(0, 0) / "action"), "pageout\n");
  EXPECT_TRUE(fs::is_empty(_records));
}

TEST_F(DamonGuard, NoDamonAtAll) {
  damon_guard g(damon_hold::actions, (_root / "absent").string(), _records.string());
  EXPECT_EQ(g.paused(), 0U);
}

TEST_F(DamonGuard, AnActionSomeoneChangedMeanwhileIsNotOverwritten) {
  {
    damon_guard g(damon_hold::actions, _admin.string(), _records.string());
    put(scheme(0, 0) / "action", "cold\n");
  }
  EXPECT_EQ(slurp(scheme(0, 0) / "action"), "cold\n");
}

TEST_F(DamonGuard, AFailedPauseGivesBackWhatItChangedAndThrows) {
  put(kd(0) / "contexts/0/schemes/nr_schemes", "3\n");
  put(scheme(0, 2) / "action", "pageout\n");
  fs::remove(scheme(0, 2) / "action");
  fs::create_directories(scheme(0, 2) / "action");  // a directory: reading it fails
  EXPECT_THROW(damon_guard(damon_hold::actions, _admin.string(), _records.string()), std::exception);
  EXPECT_EQ(slurp(scheme(0, 0) / "action"), "pageout");
  EXPECT_TRUE(fs::is_empty(_records));
}

// A run killed with SIGKILL leaves its record; the next locked run gives the actions back.
TEST_F(DamonGuard, ADeadRunsRecordIsGivenBackByTheNextRun) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    try {
      damon_guard g(damon_hold::actions, _admin.string(), _records.string());
      ::_exit(g.paused() == 1 ? 0 : 1);  // no destructor: as if killed
    } catch (...) {
      ::_exit(2);
    }
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_EQ(WEXITSTATUS(status), 0);
  ASSERT_EQ(slurp(scheme(0, 0) / "action"), "stat");
  put(_records / (std::string(DAMON_RECORD_PREFIX) + std::to_string(::getpid())), "");  // a live run's: kept
  restore_stale_damon(_records.string(), _admin.string());
  EXPECT_EQ(slurp(scheme(0, 0) / "action"), "pageout");
  EXPECT_TRUE(fs::exists(_records / (std::string(DAMON_RECORD_PREFIX) + std::to_string(::getpid()))));
  EXPECT_FALSE(fs::exists(_records / (std::string(DAMON_RECORD_PREFIX) + std::to_string(child))));
}

// Cleanup runs as root: a record that is not a regular file of ours, or a line that names
// something outside DAMON's directory, is not followed (the record still goes).
TEST_F(DamonGuard, AStaleRecordOnlyLeadsToDamonsOwnFiles) {
  put(scheme(0, 0) / "action", "stat\n");
  put(_root / "elsewhere/action", "stat\n");
  const fs::path dead = _records / (std::string(DAMON_RECORD_PREFIX) + "999999999");
  put(dead, kd(0).string() + "\t" + (_root / "elsewhere").string() + "\tpageout\n" + kd(0).string() + "\t" +
                (kd(0) / "contexts/0/schemes/../../../../elsewhere").string() + "\tpageout\n" + kd(0).string() + "\t" +
                scheme(0, 0).string() + "\tpageout\n");
  const fs::path link = _records / (std::string(DAMON_RECORD_PREFIX) + "999999998");
  fs::create_symlink(dead, link);
  restore_stale_damon(_records.string(), _admin.string());
  EXPECT_EQ(slurp(_root / "elsewhere/action"), "stat\n");
  EXPECT_EQ(slurp(scheme(0, 0) / "action"), "pageout");
  EXPECT_TRUE(fs::is_empty(_records));
}

// For a run that prints smaps figures every running kdamond is turned off, so that nothing
// samples accessed bits, and on again at the end; one that is off is left alone.
TEST_F(DamonGuard, ForSmapsRunningKdamondsAreTurnedOffUntilTheEnd) {
  {
    damon_guard g(damon_hold::monitoring, _admin.string(), _records.string());
    EXPECT_EQ(g.stopped(), 1U);
    EXPECT_EQ(g.paused(), 0U);
    EXPECT_EQ(slurp(kd(0) / "state"), "off");
    EXPECT_EQ(slurp(scheme(0, 0) / "action"), "pageout\n") << "a kdamond that is off acts on nothing: no pause";
    EXPECT_EQ(slurp(kd(1) / "state"), "off\n") << "a kdamond that was off is not ours to turn on";
    EXPECT_EQ(slurp(g.record_path()), kd(0).string() + "\ton\n");
  }
  EXPECT_EQ(slurp(kd(0) / "state"), "on");
  EXPECT_EQ(slurp(kd(1) / "state"), "off\n");
  EXPECT_TRUE(fs::is_empty(_records)) << "the record is removed";
}

TEST_F(DamonGuard, AKdamondSomeoneTurnedOnMeanwhileIsNotWrittenAgain) {
  {
    damon_guard g(damon_hold::monitoring, _admin.string(), _records.string());
    put(kd(0) / "state", "on\n");
  }
  EXPECT_EQ(slurp(kd(0) / "state"), "on\n");
}

/// Sets or clears the immutable attribute of @p, which not even root may write through:
/// false when this file system or user cannot.
bool set_immutable(const fs::path& p, bool on) {
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  int flags = 0;
  bool ok = ::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0;
  flags = on ? (flags | FS_IMMUTABLE_FL) : (flags & ~FS_IMMUTABLE_FL);
  ok = ok && ::ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
  ::close(fd);
  return ok;
}

// The second kdamond's state cannot be written: the first, already off, goes on again.
TEST_F(DamonGuard, AFailedStopTurnsBackOnWhatItTurnedOffAndThrows) {
  put(_admin / "kdamonds/nr_kdamonds", "3\n");
  put(kd(2) / "state", "on\n");
  if (!set_immutable(kd(2) / "state", true)) GTEST_SKIP() << "no immutable files here (root on ext4/xfs/btrfs)";
  EXPECT_THROW(damon_guard(damon_hold::monitoring, _admin.string(), _records.string()), std::exception);
  set_immutable(kd(2) / "state", false);
  EXPECT_EQ(slurp(kd(0) / "state"), "on");
  EXPECT_TRUE(fs::is_empty(_records));
}

TEST_F(DamonGuard, ADeadRunsStoppedKdamondIsTurnedOnByTheNextRun) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    try {
      damon_guard g(damon_hold::monitoring, _admin.string(), _records.string());
      ::_exit(g.stopped() == 1 ? 0 : 1);  // no destructor: as if killed
    } catch (...) {
      ::_exit(2);
    }
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_EQ(WEXITSTATUS(status), 0);
  ASSERT_EQ(slurp(kd(0) / "state"), "off");
  restore_stale_damon(_records.string(), _admin.string());
  EXPECT_EQ(slurp(kd(0) / "state"), "on");
  EXPECT_TRUE(fs::is_empty(_records));
}

// A kdamond line that leads outside DAMON's directory is not followed either.
TEST_F(DamonGuard, AStaleKdamondLineOnlyLeadsToDamonsOwnFiles) {
  put(_root / "elsewhere/state", "off\n");
  put(kd(0) / "state", "off\n");
  put(_records / (std::string(DAMON_RECORD_PREFIX) + "999999999"), (_root / "elsewhere").string() + "\ton\n" +
                                                                       (kd(0) / "../../../elsewhere").string() +
                                                                       "\ton\n" + kd(0).string() + "\toff\n");
  restore_stale_damon(_records.string(), _admin.string());
  EXPECT_EQ(slurp(_root / "elsewhere/state"), "off\n");
  EXPECT_EQ(slurp(kd(0) / "state"), "off\n") << "only a line that says `on` turns a kdamond on";
  EXPECT_TRUE(fs::is_empty(_records));
}

// The names stale cleanup trusts: PREFIX then a pid's digits, nothing else, no overflow.
TEST(PidSuffix, OnlyPrefixThenAPidsDigits) {
  EXPECT_EQ(pid_suffix("rmapkit-damon-123", DAMON_RECORD_PREFIX), 123);
  EXPECT_EQ(pid_suffix("rmapkit-damon-999999999", DAMON_RECORD_PREFIX), 999999999);
  EXPECT_EQ(pid_suffix("rmapkit-damon-", DAMON_RECORD_PREFIX), 0);
  EXPECT_EQ(pid_suffix("rmapkit-damon-12a", DAMON_RECORD_PREFIX), 0);
  EXPECT_EQ(pid_suffix("rmapkit-damon-123.new", DAMON_RECORD_PREFIX), 0);
  EXPECT_EQ(pid_suffix("rmapkit-damon-9999999999", DAMON_RECORD_PREFIX), 0);
  EXPECT_EQ(pid_suffix("rmapkit-swap-1", DAMON_RECORD_PREFIX), 0);
  EXPECT_EQ(pid_suffix("rm", DAMON_RECORD_PREFIX), 0);
}

}  // namespace
}  // namespace rmapkit::kcheck
