// machine_lock on a lock file of the test's own: the holder says who it is in the file, a
// run that must wait says for whom before it waits, one that may not wait fails at once
// naming the holder, and the record is gone once the lock is given back.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "kcheck/host_guards.h"
#include "support/subprocess.h"

namespace rmapkit::kcheck {
namespace {

namespace fs = std::filesystem;
using rmapkit::testing::slurp;

class MachineLock : public ::testing::Test {
 protected:
  void SetUp() override { fs::remove(_path); }
  void TearDown() override { fs::remove(_path); }
  const std::string _path = (fs::temp_directory_path() / ("rmapkit-lock-test-" + std::to_string(::getpid()))).string();
};

TEST_F(MachineLock, TheHolderRecordsItsPidAndClearsTheRecordWhenItGivesTheLockBack) {
  {
    const machine_lock lock([] {}, {}, _path);
    EXPECT_NE(slurp(_path).find(fmt::format("pid {} (", ::getpid())), std::string::npos) << slurp(_path);
  }
  EXPECT_EQ(slurp(_path), "");
}

TEST_F(MachineLock, NoWaitFailsAtOnceNamingTheHolder) {
  const machine_lock held([] {}, {}, _path);
  bool told = false;
  try {
    const machine_lock second([] {}, lock_wait{false, [&](const std::string&) { told = true; }}, _path);
    FAIL() << "a second lock was granted while the first was held";
  } catch (const lock_busy& e) {
    EXPECT_NE(std::string(e.what()).find(fmt::format("held by pid {} (", ::getpid())), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--no-wait"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(told) << "a run that does not wait has nothing to announce";
  // The failed attempt must not have touched the holder's record.
  EXPECT_NE(slurp(_path).find(fmt::format("pid {} (", ::getpid())), std::string::npos);
}

TEST_F(MachineLock, AWaitingRunSaysForWhomOnceAndGetsTheLockWhenItIsFree) {
  auto first = std::make_unique<machine_lock>([] {}, lock_wait{}, _path);
  std::atomic<int> notices = 0;
  std::string notice;
  std::atomic<bool> got = false;
  std::thread waiter([&] {
    const machine_lock second([] {},
                              lock_wait{true,
                                        [&](const std::string& what) {
                                          notice = what;
                                          ++notices;
                                        }},
                              _path);
    got = true;
  });
  while (notices == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_FALSE(got) << "the lock was granted while another holder had it";
  first.reset();
  waiter.join();
  EXPECT_TRUE(got);
  EXPECT_EQ(notices, 1);
  EXPECT_NE(notice.find(fmt::format("held by pid {} (", ::getpid())), std::string::npos) << notice;
  EXPECT_NE(notice.find("waiting"), std::string::npos) << notice;
}

TEST_F(MachineLock, AHolderThatWroteNothingIsStillReported) {
  // flock(1) or an older rmapkit holds the lock without a record.
  const int fd = ::open(_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);
  try {
    const machine_lock second([] {}, lock_wait{false, {}}, _path);
    FAIL() << "granted while held";
  } catch (const lock_busy& e) {
    EXPECT_NE(std::string(e.what()).find("another process"), std::string::npos) << e.what();
  }
  ::close(fd);
}

}  // namespace
}  // namespace rmapkit::kcheck
