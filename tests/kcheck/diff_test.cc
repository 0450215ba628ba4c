// The design lab's diff() on the live kernel: a scenario the model gets right is reported
// as agreement, with both back ends' reports; a refusal on both sides agrees too.
#include <filesystem>
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

#include "rmapkit/lab/diff.h"
#include "rmapkit/scenario/parser.h"
#include "support/machine_state.h"

namespace rmapkit::testing {
namespace {

namespace sc = rmapkit::scenario;

sc::program load(const std::string& text, const std::string& name) {
  auto parsed = sc::parse(text, name);
  if (!parsed) throw std::runtime_error(parsed.error().str());
  auto prog = sc::resolve(*parsed);
  if (!prog) throw std::runtime_error(prog.error().str());
  return *prog;
}

class LabDiff : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = kernel_unavailable(); !why.empty()) GTEST_SKIP() << "the kernel back end cannot run here: " << why;
  }
};

TEST_F(LabDiff, AForkCowScenarioAgrees) {
  const auto prog = load(
      "spawn P\nP: mmap A anon private pages=4\nP: write A\nP: fork C\nC: write A[0]\n"
      "check after_cow\nC: exit\ncheck after_exit\n",
      "fork-cow.rmap");
  const auto before = read_machine_state();
  const auto r = lab::diff(prog);
  EXPECT_TRUE(r.agree) << r.unified << r.kernel.errors;
  EXPECT_EQ(r.exit_code(), 0);
  EXPECT_EQ(r.signal, 0);
  EXPECT_EQ(r.unified, "");
  EXPECT_EQ(r.model.exit_code, 0) << r.model.errors;
  EXPECT_EQ(r.kernel.exit_code, 0) << r.kernel.errors;
  EXPECT_EQ(r.model.report, r.kernel.report);
  EXPECT_EQ(r.model.report.rfind("check after_cow\n", 0), 0U) << r.model.report;
  EXPECT_NE(r.model.report.find("check after_exit\n"), std::string::npos) << r.model.report;
  EXPECT_EQ(read_machine_state(), before);
}

TEST_F(LabDiff, TheSameRefusalOnBothSidesAgreesWithTheKernelsStatus) {
  // Only the running memory manager knows that madvise mergeable split the region (the
  // scenario's history does not track VM_MERGEABLE): both refuse to resize a region that
  // is not one VMA.
  const auto r = lab::diff(load(
      "spawn P\nP: mmap A anon private pages=4\nP: madvise A[1] mergeable\nP: mremap A pages=8\n", "refused.rmap"));
  EXPECT_TRUE(r.agree) << r.unified;
  EXPECT_EQ(r.kernel.exit_code, sc::EXIT_SCENARIO_ERROR) << r.kernel.errors;
  EXPECT_EQ(r.exit_code(), sc::EXIT_SCENARIO_ERROR);
  EXPECT_EQ(r.model.text(), r.kernel.text());
  EXPECT_EQ(r.model.text(), "error: refused.rmap:4: mremap: the region is not one VMA covering pages 0 to 3\n");
}

// The examples the docs tell their stories with (docs/walkthrough.md) say the kernel agrees
// with them: it must go on agreeing.
TEST_F(LabDiff, EveryExampleAgreesWithTheKernel) {
  int examples = 0;
  for (const auto& entry : std::filesystem::directory_iterator(RMAPKIT_EXAMPLES_DIR)) {
    if (entry.path().extension() != ".rmap") continue;
    ++examples;
    auto parsed = sc::parse_file(entry.path().string());
    ASSERT_TRUE(parsed) << parsed.error().str();
    auto prog = sc::resolve(*parsed);
    ASSERT_TRUE(prog) << prog.error().str();
    const auto r = lab::diff(*prog);
    EXPECT_TRUE(r.agree) << entry.path() << "\n" << r.unified << r.kernel.errors;
    EXPECT_EQ(r.exit_code(), 0) << entry.path() << "\n" << r.model.errors << r.kernel.errors;
  }
  EXPECT_GE(examples, 4);
}

}  // namespace
}  // namespace rmapkit::testing
