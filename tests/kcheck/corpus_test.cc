// The golden corpora on the live kernel: every scenario of tests/scenarios/ (version 1) and
// tests/scenarios/v2/ (large folios), run twice, prints its .expected byte for byte, and
// leaves the machine as it found it.
#include <dirent.h>

#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/machine_state.h"
#include "support/subprocess.h"

namespace rmapkit::testing {
namespace {

std::vector<std::string> corpus() { return corpus_names(RMAPKIT_SCENARIO_DIR); }

class Corpus : public ::testing::TestWithParam<std::string> {};

/// Runs @base.rmap on the kernel twice: both print @base.expected, and the machine is as
/// it was before. A scenario whose report was seen to depend on the host (the same kernel
/// release, a different machine) has the other host's report in @base.alt.expected, which
/// its .rmap explains; either is accepted, and the test says which one this host gave.
void expect_kernel_prints_expected_twice(const std::string& base) {
  std::string expected = slurp(base + ".expected");
  ASSERT_FALSE(expected.empty()) << base << ".expected is missing: make it with scripts/make-expected.sh";
  const std::string other_host = slurp(base + ".alt.expected");

  auto before = read_machine_state();
  auto first = run({rmapkit_bin(), "kernel", base + ".rmap"});
  auto second = run({rmapkit_bin(), "kernel", base + ".rmap"});
  auto after = read_machine_state();

  ASSERT_EQ(first.exit_code, 0) << first.err;
  ASSERT_EQ(second.exit_code, 0) << second.err;
  if (!other_host.empty() && first.out == other_host) {
    ::testing::Test::RecordProperty("host_variant", "alt");
    std::cout << "this host prints " << base << ".alt.expected, not .expected (see the scenario's comment)\n";
    expected = other_host;
  }
  EXPECT_EQ(first.out, expected) << "the kernel's report differs from " << base << ".expected";
  EXPECT_EQ(second.out, first.out) << "two runs in a row differ";
  EXPECT_EQ(after, before);
}

TEST_P(Corpus, KernelRunMatchesExpectedTwiceAndRestoresTheMachine) {
  if (auto why = kernel_unavailable(); !why.empty()) GTEST_SKIP() << "the kernel back end cannot run here: " << why;
  expect_kernel_prints_expected_twice(std::string(RMAPKIT_SCENARIO_DIR) + "/" + GetParam());
}

INSTANTIATE_TEST_SUITE_P(Scenarios, Corpus, ::testing::ValuesIn(corpus()), [](const auto& tp) { return tp.param; });

// Version 2 (large folios): each made from three identical kernel runs
// (scripts/make-expected.sh). The THP knobs are part of the machine state a run restores.
const std::string V2_DIR = std::string(RMAPKIT_SCENARIO_DIR) + "/v2";

class CorpusV2 : public ::testing::TestWithParam<std::string> {};

TEST_P(CorpusV2, KernelRunMatchesExpectedTwiceAndRestoresTheThpKnobs) {
  if (auto why = kernel_unavailable(); !why.empty()) GTEST_SKIP() << "the kernel back end cannot run here: " << why;
  expect_kernel_prints_expected_twice(V2_DIR + "/" + GetParam());
}

INSTANTIATE_TEST_SUITE_P(Scenarios, CorpusV2, ::testing::ValuesIn(corpus_names(V2_DIR)),
                         [](const auto& tp) { return tp.param; });

TEST(CorpusShape, HasAtLeastFortyScenariosEachWithExpected) {
  auto names = corpus();
  EXPECT_GE(names.size(), 40U);
  for (const auto& n : names)
    EXPECT_FALSE(slurp(std::string(RMAPKIT_SCENARIO_DIR) + "/" + n + ".expected").empty()) << n;
}

TEST(CorpusShape, TheVersion2CorpusHasAtLeastThirtyScenariosEachWithExpected) {
  auto names = corpus_names(V2_DIR);
  EXPECT_GE(names.size(), 30U);
  for (const auto& n : names) EXPECT_FALSE(slurp(V2_DIR + "/" + n + ".expected").empty()) << n;
}

}  // namespace
}  // namespace rmapkit::testing
