// Differential testing against the kernel: random scenarios run on the model and on the
// live kernel must print identical reports (and refuse the same statements). A mismatch
// is saved as a scenario file, with its diff, under the build tree's differential/ folder,
// ready to be added to the corpus. Set RMAPKIT_DIFF_SEED to explore other seeds. The
// design lab's diff() runs both back ends and compares.
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <optional>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "rmapkit/lab/diff.h"
#include "rmapkit/model/model.h"
#include "rmapkit/scenario/generate.h"
#include "rmapkit/scenario/parser.h"
#include "support/machine_state.h"

namespace rmapkit::testing {
namespace {

namespace sc = rmapkit::scenario;

TEST(Differential, TwoHundredRandomScenariosGiveIdenticalReports) {
  if (auto why = kernel_unavailable(); !why.empty()) GTEST_SKIP() << "the kernel back end cannot run here: " << why;
  std::uint64_t base = 1;
  if (const char* env = std::getenv("RMAPKIT_DIFF_SEED")) base = std::strtoull(env, nullptr, 0);
  const std::string out_dir = RMAPKIT_DIFF_DIR;
  ::mkdir(out_dir.c_str(), 0755);
  auto before = read_machine_state();
  int mismatches = 0, both_refused = 0;
  std::optional<damon_paused_for_test> damon(std::in_place);
  for (std::uint64_t seed = base; seed < base + 200; ++seed) {
    sc::random_options o;
    o.seed = seed;
    o.statements = 60;
    o.pageout = true;
    o.ksm = true;
    o.reclaim = true;
    const auto name = fmt::format("seed-{}.rmap", seed);
    const auto text = sc::generate_random(o);
    auto parsed = sc::parse(text, name);
    ASSERT_TRUE(parsed) << parsed.error().str();
    auto prog = sc::resolve(*parsed);
    ASSERT_TRUE(prog) << prog.error().str();
    const auto r = lab::diff(*prog);
    if (r.exit_code() == sc::EXIT_SCENARIO_ERROR) {
      both_refused++;
      continue;
    }
    if (r.exit_code() == 0) continue;
    mismatches++;
    const auto saved = fmt::format("{}/{}", out_dir, name);
    const auto why = r.unified + (r.agree || r.signal ? r.kernel.errors : "");
    std::ofstream(saved) << text;
    std::ofstream(saved + ".diff") << why;
    ADD_FAILURE() << "seed " << seed << ": the model and the kernel differ; saved as " << saved << "\n" << why;
  }
  damon.reset();
  EXPECT_EQ(mismatches, 0);
  EXPECT_LT(both_refused, 40) << "too many scenarios refused by both: the generator needs fixing";
  EXPECT_EQ(read_machine_state(), before);
}

// The CI slice of the KSM-heavy campaign (scripts/ksm-campaign.sh runs a thousand or
// more): scenarios whose contents have hundreds of sharers, so that stable-node chains
// form, refill (with and without prune passes), lose their dups and collapse; reports
// and the KSM counters after every `ksm` must agree. RMAPKIT_DIFF_SEED moves the seeds.
TEST(Differential, FortyKsmHeavyScenariosGiveIdenticalReportsAndKsmCounters) {
  if (auto why = kernel_unavailable(); !why.empty()) GTEST_SKIP() << "the kernel back end cannot run here: " << why;
  std::uint64_t base = 1;
  if (const char* env = std::getenv("RMAPKIT_DIFF_SEED")) base = std::strtoull(env, nullptr, 0);
  const std::string out_dir = RMAPKIT_DIFF_DIR;
  ::mkdir(out_dir.c_str(), 0755);
  auto before = read_machine_state();
  int mismatches = 0, chains = 0;
  model::run_options mopts;
  mopts.ksm_counters = true;
  for (std::uint64_t seed = base; seed < base + 40; ++seed) {
    sc::random_options o;
    o.seed = seed;
    o.ksm_heavy = true;
    const auto name = fmt::format("ksm-heavy-seed-{}.rmap", seed);
    const auto text = sc::generate_random(o);
    auto parsed = sc::parse(text, name);
    ASSERT_TRUE(parsed) << parsed.error().str();
    auto prog = sc::resolve(*parsed);
    ASSERT_TRUE(prog) << prog.error().str();
    const auto r = lab::diff(*prog, mopts);
    const auto& rep = r.model.report;
    for (auto at = rep.find("stable_node_chains="); at != std::string::npos;
         at = rep.find("stable_node_chains=", at + 1))
      if (rep[at + 19] != '0') {
        chains++;
        break;
      }
    if (r.exit_code() == 0) continue;
    mismatches++;
    const auto saved = fmt::format("{}/{}", out_dir, name);
    const auto why = r.unified + (r.agree || r.signal ? r.kernel.errors : "");
    std::ofstream(saved) << text;
    std::ofstream(saved + ".diff") << why;
    ADD_FAILURE() << "seed " << seed << ": the model and the kernel differ; saved as " << saved << "\n" << why;
  }
  EXPECT_EQ(mismatches, 0);
  EXPECT_GE(chains, 8) << "too few of the 40 scenarios made a stable-node chain: the generator misses its aim";
  EXPECT_EQ(read_machine_state(), before);
}

}  // namespace
}  // namespace rmapkit::testing
