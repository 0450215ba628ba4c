// thp_guard on a directory shaped like /sys/kernel/mm/transparent_hugepage: the sizes a
// scenario names in `madvise` mode and every other size `never`, each changed knob recorded
// before it changes and restored after; a run killed with SIGKILL is undone by the next; a
// size the kernel lacks is refused naming what it offers; khugepaged's knobs are never written.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include <gtest/gtest.h>

#include "kcheck/procfs.h"
#include "kcheck/thp_guard.h"
#include "rmapkit/scenario/diag.h"
#include "support/subprocess.h"

namespace rmapkit::kcheck {
namespace {

namespace fs = std::filesystem;
using rmapkit::testing::slurp;

constexpr std::uint16_t order_bit(unsigned o) { return static_cast<std::uint16_t>(1U << o); }

class ThpGuard : public ::testing::Test {
 protected:
  void SetUp() override {
    _root = fs::temp_directory_path() / ("rmapkit-thp-test-" + std::to_string(::getpid()));
    fs::remove_all(_root);
    _thp = _root / "transparent_hugepage";
    _records = _root / "records";
    fs::create_directories(_thp / "khugepaged");
    fs::create_directories(_records);
    // The project kernel's defaults, 8 kB with shmem only.
    put("enabled", "always [madvise] never");
    put("defrag", "always defer defer+madvise [madvise] never");
    put("use_zero_page", "1");
    put("shrink_underused", "1");
    put("shmem_enabled", "always within_size advise [never] deny force");
    put("khugepaged/max_ptes_none", "511");
    for (unsigned kb : {8U, 16U, 32U, 64U, 128U, 256U, 512U, 1024U, 2048U}) {
      const auto dir = "hugepages-" + std::to_string(kb) + "kB";
      fs::create_directories(_thp / dir);
      if (kb != 8)
        put(dir + "/enabled", kb == 2048 ? "always [inherit] madvise never" : "always inherit madvise [never]");
      put(dir + "/shmem_enabled",
          kb == 2048 ? "always [inherit] within_size advise never" : "always inherit within_size advise [never]");
    }
  }
  void TearDown() override { fs::remove_all(_root); }

  void put(const std::string& knob, const std::string& v) { std::ofstream(_thp / knob) << v << "\n"; }
  /// The knob as the fake kernel now holds it: what the guard wrote (a bare word), or the
  /// selector line it started with.
  std::string knob(const std::string& k) const {
    auto v = trimmed(slurp((_thp / k).string()));
    auto open = v.find('[');
    return open == std::string::npos ? v : v.substr(open + 1, v.find(']') - open - 1);
  }
  std::vector<std::string> records() const { return list_dir(_records.string()); }

  fs::path _root, _thp, _records;
};

TEST_F(ThpGuard, NamedSizesAreMadviseEveryOtherNeverAndAllIsRestored) {
  {
    thp_guard g(scenario::op_thp{static_cast<std::uint16_t>(order_bit(4) | order_bit(9)), order_bit(4)}, _thp.string(),
                _records.string());
    EXPECT_EQ(knob("hugepages-64kB/enabled"), "madvise");
    EXPECT_EQ(knob("hugepages-2048kB/enabled"), "madvise");
    EXPECT_EQ(knob("hugepages-16kB/enabled"), "never");
    EXPECT_EQ(knob("hugepages-1024kB/enabled"), "never");
    EXPECT_EQ(knob("hugepages-64kB/shmem_enabled"), "advise");
    EXPECT_EQ(knob("hugepages-2048kB/shmem_enabled"), "never") << "2m is not among shmem's sizes";
    EXPECT_EQ(knob("hugepages-8kB/shmem_enabled"), "never") << "a size outside the format is off too";
    EXPECT_EQ(knob("shrink_underused"), "0");
    EXPECT_EQ(knob("enabled"), "madvise");
    EXPECT_EQ(knob("khugepaged/max_ptes_none"), "511") << "khugepaged's knobs are never written";
    ASSERT_EQ(records().size(), 1U);
    const auto rec = slurp((_records / records()[0]).string());
    EXPECT_NE(rec.find("hugepages-64kB/enabled=never\n"), std::string::npos) << rec;
    EXPECT_NE(rec.find("hugepages-2048kB/enabled=inherit\n"), std::string::npos) << rec;
    EXPECT_EQ(rec.find("enabled=madvise"), std::string::npos) << "an unchanged knob is neither written nor recorded";
  }
  EXPECT_EQ(knob("hugepages-64kB/enabled"), "never");
  EXPECT_EQ(knob("hugepages-2048kB/enabled"), "inherit");
  EXPECT_EQ(knob("hugepages-2048kB/shmem_enabled"), "inherit");
  EXPECT_EQ(knob("shrink_underused"), "1");
  EXPECT_TRUE(records().empty());
}

TEST_F(ThpGuard, ShmemPmdSizeAlsoSetsTheTopLevelShmemPolicy) {
  {
    thp_guard g(scenario::op_thp{0, order_bit(9)}, _thp.string(), _records.string());
    EXPECT_EQ(knob("shmem_enabled"), "advise");
    EXPECT_EQ(knob("hugepages-2048kB/shmem_enabled"), "advise");
    EXPECT_EQ(knob("hugepages-2048kB/enabled"), "never") << "anon=none";
  }
  EXPECT_EQ(knob("shmem_enabled"), "never");
}

TEST_F(ThpGuard, ASizeTheKernelLacksIsRefusedNamingWhatItOffers) {
  fs::remove_all(_thp / "hugepages-32kB");
  fs::remove(_thp / "hugepages-1024kB" / "shmem_enabled");
  try {
    thp_guard g(scenario::op_thp{order_bit(3), order_bit(8)}, _thp.string(), _records.string());
    FAIL() << "a missing size was accepted";
  } catch (const scenario::statement_error& e) {
    EXPECT_STREQ(e.what(),
                 "thp: this kernel has no anonymous 32k, shmem 1m folios; it offers anon=16k,64k,128k,256k,512k,1m,2m "
                 "shmem=16k,64k,128k,256k,512k,2m");
  }
  EXPECT_EQ(knob("hugepages-64kB/enabled"), "never");
  EXPECT_TRUE(records().empty()) << "nothing was changed, so nothing is recorded";
}

TEST_F(ThpGuard, AKnobThatCannotBeWrittenUndoesTheOnesBeforeIt) {
  fs::remove(_thp / "hugepages-2048kB" / "enabled");
  fs::create_directories(_thp / "hugepages-2048kB" / "enabled");  // a write to it fails (EISDIR)
  EXPECT_THROW(thp_guard(scenario::op_thp{order_bit(4), 0}, _thp.string(), _records.string()), std::system_error);
  EXPECT_EQ(knob("hugepages-64kB/enabled"), "never") << "set before the failure, and given back";
  EXPECT_EQ(knob("shrink_underused"), "1");
  EXPECT_TRUE(records().empty()) << "everything was given back, so no record is left";
}

TEST_F(ThpGuard, AKernelWithoutThpIsRefused) {
  fs::remove_all(_thp);
  EXPECT_THROW(thp_guard(scenario::op_thp{order_bit(4), 0}, _thp.string(), _records.string()),
               scenario::statement_error);
}

TEST_F(ThpGuard, ARunKilledWithSigkillIsUndoneByTheNext) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    thp_guard g(scenario::op_thp{order_bit(4), 0}, _thp.string(), _records.string());
    ::kill(::getpid(), SIGKILL);  // no destructor runs
    ::_exit(1);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  EXPECT_EQ(knob("hugepages-64kB/enabled"), "madvise") << "SIGKILL left the knobs set";
  EXPECT_EQ(knob("hugepages-2048kB/enabled"), "never");
  EXPECT_TRUE(stale_thp_exists(_records.string()));
  restore_stale_thp(_thp.string(), _records.string());
  EXPECT_EQ(knob("hugepages-64kB/enabled"), "never");
  EXPECT_EQ(knob("hugepages-2048kB/enabled"), "inherit");
  EXPECT_EQ(knob("shrink_underused"), "1");
  EXPECT_TRUE(records().empty());
  EXPECT_FALSE(stale_thp_exists(_records.string()));
}

TEST_F(ThpGuard, AStaleRecordWritesOnlyKnobsAndValuesOfTheShapesARunWrites) {
  std::ofstream(_records / "rmapkit-thp-999999999")
      << "hugepages-64kB/enabled=always\n../../etc/passwd=x\nkhugepaged/max_ptes_none=0\nenabled=$(reboot)\n";
  restore_stale_thp(_thp.string(), _records.string());
  EXPECT_EQ(knob("hugepages-64kB/enabled"), "always");
  EXPECT_EQ(knob("khugepaged/max_ptes_none"), "511");
  EXPECT_EQ(knob("enabled"), "madvise");
  EXPECT_TRUE(records().empty());
}

TEST(ThpCounters, MovedNamesEveryCounterThatChangedExceptThoseIgnored) {
  const thp_counters before{{"pgscan_direct", 10}, {"khugepaged/pages_collapsed", 0}, {"drop_slab", 1}};
  const thp_counters after{{"pgscan_direct", 12}, {"khugepaged/pages_collapsed", 512}, {"drop_slab", 1}};
  EXPECT_EQ(moved(before, after), (std::vector<std::string>{"khugepaged/pages_collapsed +512", "pgscan_direct +2"}));
  EXPECT_EQ(moved(before, after, {"pgscan_direct"}), (std::vector<std::string>{"khugepaged/pages_collapsed +512"}));
  EXPECT_TRUE(moved(before, before).empty());
  EXPECT_EQ(moved(after, before, {"pgscan_direct"}), (std::vector<std::string>{"khugepaged/pages_collapsed -512"}))
      << "a counter that went down (reset) is named, not wrapped round";
}

}  // namespace
}  // namespace rmapkit::kcheck
