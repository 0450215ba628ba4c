// rmapkit fuzz on the live kernel: a model with a planted fault is caught on every seed and
// each disagreement is minimised to a case of a few statements that still shows it (and
// that the model without the fault gets right); and a bounded slice of a real campaign, of
// every profile that needs no machine lock and one seed of each that does, runs clean. A
// campaign that may not wait for a busy machine lock stops, recording nothing it did not run.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "kcheck/host_guards.h"
#include "rmapkit/lab/diff.h"
#include "rmapkit/lab/fuzz.h"
#include "rmapkit/scenario/parser.h"
#include "rmapkit/scenario/profile.h"
#include "support/machine_state.h"

namespace rmapkit::testing {
namespace {

namespace sc = rmapkit::scenario;
namespace fs = std::filesystem;

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

class FuzzKernel : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = kernel_unavailable(); !why.empty()) GTEST_SKIP() << "the kernel back end cannot run here: " << why;
    std::string tmpl = (fs::temp_directory_path() / "rmapkit-fuzz-XXXXXX").string();
    _dir = ::mkdtemp(tmpl.data());
  }
  void TearDown() override {
    if (!_dir.empty()) fs::remove_all(_dir);
  }

  lab::fuzz_options options(std::vector<std::string> profiles, std::uint64_t first, std::uint64_t last) const {
    lab::fuzz_options o;
    o.out_dir = _dir.string();
    o.seeds = {.first = first, .last = last};
    for (const auto& p : profiles) o.profiles.push_back(*sc::find_profile(p));
    return o;
  }

  fs::path _dir;
  damon_paused_for_test _damon;
};

TEST_F(FuzzKernel, APlantedFaultIsFoundOnEverySeedAndMinimisedToAFewStatements) {
  auto o = options({"plain"}, 0, 4);
  o.plant = model::planted_fault::read_as_write;
  std::vector<lab::fuzz_record> records;
  o.on_record = [&](const lab::fuzz_record& r) { records.push_back(r); };
  auto s = lab::fuzz(o);
  EXPECT_EQ(s.outcomes[lab::fuzz_outcome::differ], 5U);
  ASSERT_EQ(records.size(), 5U);
  for (const auto& r : records) {
    SCOPED_TRACE("seed " + std::to_string(r.seed));
    EXPECT_EQ(r.outcome, lab::fuzz_outcome::differ);
    EXPECT_TRUE(r.case_reproduced);
    EXPECT_FALSE(r.case_exhausted);
    EXPECT_LE(r.case_statements, 7U);
    EXPECT_GT(r.statements, 50U);
    for (const char* ext : {".rmap", ".orig.rmap", ".kernel", ".model", ".diff"})
      EXPECT_TRUE(fs::exists(_dir / (r.case_name + ext))) << ext;
    const auto text = read_text(_dir / (r.case_name + ".rmap"));
    EXPECT_NE(text.find(": read "), std::string::npos) << text;
    EXPECT_NE(text.find("# the original: rmapkit gen random --profile plain --seed " + std::to_string(r.seed)),
              std::string::npos)
        << text;
    EXPECT_EQ(read_text(_dir / (r.case_name + ".diff")).rfind("--- kernel " + r.case_name + ".rmap\n", 0), 0U);
    // The case shows the planted fault and nothing else: the model without it agrees.
    auto parsed = sc::parse(text, r.case_name + ".rmap");
    ASSERT_TRUE(parsed);
    auto prog = sc::resolve(*parsed);
    ASSERT_TRUE(prog) << prog.error().str();
    auto clean = lab::diff(*prog);
    EXPECT_TRUE(clean.agree) << clean.unified;
  }
  // The smallest of them is the zero page's case: spawn, mmap one page, read it, check.
  auto smallest = std::min_element(records.begin(), records.end(),
                                   [](const auto& a, const auto& b) { return a.case_statements < b.case_statements; });
  EXPECT_LE(smallest->case_statements, 4U);
}

TEST_F(FuzzKernel, WithoutMinimisingTheCaseIsTheWholeScenario) {
  auto o = options({"plain"}, 7, 7);
  o.plant = model::planted_fault::read_as_write;
  o.minimize = false;
  auto s = lab::fuzz(o);
  ASSERT_EQ(s.outcomes[lab::fuzz_outcome::differ], 1U);
  const auto text = read_text(_dir / "plain-7.rmap");
  EXPECT_NE(text.find("\n# not minimised (--no-minimize); found on Linux "), std::string::npos) << text;
  EXPECT_NE(text.find(read_text(_dir / "plain-7.orig.rmap")), std::string::npos)
      << "the case is not the whole scenario";
}

TEST_F(FuzzKernel, ABoundedSliceOfACampaignRunsClean) {
  // The profiles without a machine lock, a few seeds each; one seed of each that holds it;
  // ten of the large-folio profile.
  auto o = options({"plain", "fork-trees", "mremap-storms", "files"}, 1000, 1004);
  auto s = lab::fuzz(o);
  EXPECT_TRUE(s.clean()) << read_text(s.results_file);
  EXPECT_EQ(s.run, 20U);
  auto wide = options({"ksm", "ksm-sharers", "swap-mix"}, 1000, 1000);
  auto w = lab::fuzz(wide);
  EXPECT_TRUE(w.clean()) << read_text(w.results_file);
  EXPECT_EQ(w.run, 3U);
  // Large folios (version 2), the model's against the kernel's: ten seeds of mTHP alone,
  // ten with PMD-mapped THPs too, ten of shmem large folios.
  auto thp = options({"mthp", "anon-thp", "shmem-thp"}, 1000, 1009);
  auto t = lab::fuzz(thp);
  EXPECT_TRUE(t.clean()) << read_text(t.results_file);
  EXPECT_EQ(t.run, 30U);
  std::vector<std::string> errors;
  auto report = lab::fuzz_report({_dir.string()}, errors);
  EXPECT_TRUE(errors.empty());
  EXPECT_EQ(report["records"], 53);
  EXPECT_EQ(report["releases"][0]["outcomes"]["agree"], 53);
}

TEST_F(FuzzKernel, ABusyMachineLockWithNoWaitStopsTheCampaignAndARerunGoesOn) {
  auto o = options({"ksm-sharers"}, 0, 1);
  o.kernel.wait_for_lock = false;
  {
    kcheck::machine_lock held([] {});
    auto s = lab::fuzz(o);
    EXPECT_TRUE(s.busy);
    EXPECT_FALSE(s.clean());
    EXPECT_EQ(s.run, 0U) << "a scenario the kernel did not run was recorded";
    EXPECT_EQ(read_text(s.results_file), "");
  }
  auto s = lab::fuzz(o);
  EXPECT_FALSE(s.busy);
  EXPECT_EQ(s.run, 2U);
  EXPECT_TRUE(s.clean()) << read_text(s.results_file);
}

}  // namespace
}  // namespace rmapkit::testing
