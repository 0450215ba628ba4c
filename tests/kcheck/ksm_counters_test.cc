// The KSM sysfs counters after every `ksm`: the model's must equal the kernel's
// (/sys/kernel/mm/ksm), for every corpus scenario that runs KSM and for N identical
// pages at sizes that need stable-node chains (the ksm selftests' formula).
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "support/machine_state.h"
#include "support/subprocess.h"

namespace rmapkit::testing {
namespace {

void expect_same_counters(const std::string& path) {
  auto model = run({rmapkit_bin(), "run", "--ksm-counters", path});
  auto kernel = run({rmapkit_bin(), "kernel", "--ksm-counters", path});
  ASSERT_EQ(model.exit_code, 0) << model.err;
  ASSERT_EQ(kernel.exit_code, 0) << kernel.err;
  ASSERT_NE(kernel.err.find("ksm line "), std::string::npos) << "no counters printed";
  EXPECT_EQ(model.err, kernel.err) << path << ": the model's KSM counters differ from the kernel's";
}

std::vector<std::string> ksm_scenarios() {
  std::vector<std::string> out;
  for (const auto& name : corpus_names(RMAPKIT_SCENARIO_DIR)) {
    const auto text = slurp(std::string(RMAPKIT_SCENARIO_DIR) + "/" + name + ".rmap");
    if (text.find("\nksm\n") != std::string::npos || text.find("\nksm prune\n") != std::string::npos)
      out.push_back(name);
  }
  return out;
}

class KsmCountersCorpus : public ::testing::TestWithParam<std::string> {};

TEST_P(KsmCountersCorpus, ModelEqualsKernel) {
  if (auto why = kernel_unavailable(); !why.empty()) GTEST_SKIP() << "the kernel back end cannot run here: " << why;
  expect_same_counters(std::string(RMAPKIT_SCENARIO_DIR) + "/" + GetParam() + ".rmap");
}

INSTANTIATE_TEST_SUITE_P(Scenarios, KsmCountersCorpus, ::testing::ValuesIn(ksm_scenarios()),
                         [](const auto& tp) { return tp.param; });

TEST(KsmCountersCorpus, AtLeastTenScenariosRunKsm) { EXPECT_GE(ksm_scenarios().size(), 10U); }

class KsmCountersIdentical : public ::testing::TestWithParam<int> {};

// N pages of one value, then a fork whose child's copy of a lone page meets itself in the
// unstable tree (pages_volatile), then one more page written in the child.
TEST_P(KsmCountersIdentical, ModelEqualsKernel) {
  if (auto why = kernel_unavailable(); !why.empty()) GTEST_SKIP() << "the kernel back end cannot run here: " << why;
  const int n = GetParam();
  auto path = temp_file(fmt::format("ksm-{}.rmap", n),
                        fmt::format("spawn P\nP: mmap A anon private pages={}\nP: madvise A mergeable\n"
                                    "P: write A value=1\nP: mmap B anon private pages=1\nP: madvise B mergeable\n"
                                    "P: write B\nksm\nP: fork C\nksm\nC: write A[0] value=2\nksm\n",
                                    n));
  expect_same_counters(path);
}

INSTANTIATE_TEST_SUITE_P(N, KsmCountersIdentical, ::testing::Values(2, 257, 513, 1000));

}  // namespace
}  // namespace rmapkit::testing
