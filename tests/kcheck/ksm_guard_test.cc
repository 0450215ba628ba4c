// ksm_guard on a directory shaped like /sys/kernel/mm/ksm: it records each knob's value
// before changing it, restores them (run last, never run=2) and removes the record; a run
// killed with SIGKILL leaves the record, and the next run gives the knobs back from it, or
// refuses, saying what to do, when it cannot.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "kcheck/host_guards.h"
#include "kcheck/procfs.h"
#include "support/subprocess.h"

namespace rmapkit::kcheck {
namespace {

namespace fs = std::filesystem;
using rmapkit::testing::slurp;

class KsmGuard : public ::testing::Test {
 protected:
  void SetUp() override {
    _root = fs::temp_directory_path() / ("rmapkit-ksm-test-" + std::to_string(::getpid()));
    fs::remove_all(_root);
    _ksm = _root / "ksm";
    _records = _root / "records";
    fs::create_directories(_ksm);
    fs::create_directories(_records);
    for (auto [knob, value] : {std::pair{"run", "1"},
                               {"sleep_millisecs", "20"},
                               {"pages_to_scan", "100"},
                               {"smart_scan", "1"},
                               {"max_page_sharing", "256"},
                               {"use_zero_pages", "0"},
                               {"stable_node_chains", "0"}})
      std::ofstream(_ksm / knob) << value << "\n";
  }
  void TearDown() override { fs::remove_all(_root); }

  std::string knob(const char* k) const { return trimmed(slurp((_ksm / k).string())); }
  std::vector<std::string> records() const { return list_dir(_records.string()); }

  fs::path _root, _ksm, _records;
};

TEST_F(KsmGuard, RecordsBeforeChangingAndRemovesTheRecordWhenRestored) {
  {
    ksm_guard g(_ksm.string(), _records.string());
    EXPECT_EQ(knob("run"), "0") << "ksmd is stopped while a run holds the guard";
    ASSERT_EQ(records().size(), 1U);
    EXPECT_EQ(slurp((_records / records()[0]).string()), "run=1\n");
  }
  EXPECT_EQ(knob("run"), "1");
  EXPECT_TRUE(records().empty());
}

TEST_F(KsmGuard, ARunKilledWithSigkillIsUndoneByTheNext) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ksm_guard g(_ksm.string(), _records.string());
    ::kill(::getpid(), SIGKILL);  // no destructor runs
    ::_exit(1);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  EXPECT_EQ(knob("run"), "0") << "SIGKILL left ksmd stopped";
  ASSERT_EQ(records().size(), 1U);
  restore_stale_ksm(_ksm.string(), _records.string());
  EXPECT_EQ(knob("run"), "1");
  EXPECT_TRUE(records().empty());
}

TEST_F(KsmGuard, AStaleRecordNeverWritesRunTwoNorUnknownKnobs) {
  const std::string record = (_records / (std::string(KSM_RECORD_PREFIX) + "999999999")).string();
  write_record_file(record, "run=2\nsleep_millisecs=5\nmax_page_sharing=7\npages_to_scan=x\n");
  restore_stale_ksm(_ksm.string(), _records.string());
  EXPECT_EQ(knob("run"), "0") << "run=2 would unmerge every KSM page on the machine";
  EXPECT_EQ(knob("sleep_millisecs"), "5");
  EXPECT_EQ(knob("max_page_sharing"), "256") << "not a knob a run changes";
  EXPECT_EQ(knob("pages_to_scan"), "100") << "not a number";
  EXPECT_TRUE(records().empty());
}

TEST_F(KsmGuard, AKnobThatCannotBeRestoredStopsTheNextRunAndKeepsTheRecord) {
  const std::string record = (_records / (std::string(KSM_RECORD_PREFIX) + "999999999")).string();
  write_record_file(record, "sleep_millisecs=5\n");
  fs::remove(_ksm / "sleep_millisecs");
  fs::create_directory(_ksm / "sleep_millisecs");  // writing to it fails
  try {
    restore_stale_ksm(_ksm.string(), _records.string());
    FAIL() << "restored a knob it cannot write";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("left KSM tuned"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("by hand, then remove " + record), std::string::npos) << e.what();
  }
  EXPECT_EQ(records().size(), 1U);
}

}  // namespace
}  // namespace rmapkit::kcheck
