// Differential testing against the kernel: random scenarios run on the model and on the
// live kernel must print identical reports (and refuse the same statements). A mismatch
// is saved as a scenario file, with its diff, under the build tree's differential/ folder,
// ready to be added to the corpus. Set RMAPKIT_DIFF_SEED to explore other seeds. The
// design lab's diff() runs both back ends and compares.
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>

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

struct campaign {
  int mismatches = 0;
  int both_refused = 0;
  int with_chains = 0;  ///< scenarios whose model report shows a stable-node chain after a `ksm`
};

/// Whether a report with KSM counters in it shows a stable-node chain after some `ksm`.
bool shows_a_chain(const std::string& report) {
  constexpr std::string_view field = "stable_node_chains=";
  for (auto at = report.find(field); at != std::string::npos; at = report.find(field, at + 1))
    if (report[at + field.size()] != '0') return true;
  return false;
}

/// Runs @count scenarios of `gen random` with @o, from seed 1 (RMAPKIT_DIFF_SEED moves it),
/// on the model (with @mopts) and on the live kernel, with DAMON paused, and saves every
/// mismatch, with its diff, as PREFIXseed-N.rmap under the build tree's differential/.
campaign run_campaign(sc::random_options o, std::uint64_t count, const std::string& prefix,
                      const model::run_options& mopts = {}) {
  std::uint64_t base = 1;
  if (const char* env = std::getenv("RMAPKIT_DIFF_SEED")) base = std::strtoull(env, nullptr, 0);
  const std::string out_dir = RMAPKIT_DIFF_DIR;
  ::mkdir(out_dir.c_str(), 0755);
  campaign c;
  damon_paused_for_test damon;
  for (std::uint64_t seed = base; seed < base + count; ++seed) {
    o.seed = seed;
    const auto name = fmt::format("{}seed-{}.rmap", prefix, seed);
    const auto text = sc::generate_random(o);
    auto parsed = sc::parse(text, name);
    auto prog = parsed ? sc::resolve(*parsed) : tl::make_unexpected(parsed.error());
    if (!prog) {
      ADD_FAILURE() << "gen random wrote an invalid scenario: " << prog.error().str();
      continue;
    }
    const auto r = lab::diff(*prog, mopts);
    c.with_chains += shows_a_chain(r.model.report) ? 1 : 0;
    if (r.exit_code() == sc::EXIT_SCENARIO_ERROR) {
      c.both_refused++;
      continue;
    }
    if (r.exit_code() == 0) continue;
    c.mismatches++;
    const auto saved = fmt::format("{}/{}", out_dir, name);
    const auto why = r.unified + (r.agree || r.signal ? r.kernel.errors : "");
    std::ofstream(saved) << text;
    std::ofstream(saved + ".diff") << why;
    ADD_FAILURE() << "seed " << seed << ": the model and the kernel differ; saved as " << saved << "\n" << why;
  }
  return c;
}

TEST(Differential, TwoHundredRandomScenariosGiveIdenticalReports) {
  if (auto why = kernel_unavailable(); !why.empty()) GTEST_SKIP() << "the kernel back end cannot run here: " << why;
  auto before = read_machine_state();
  const auto c = run_campaign({.statements = 60, .pageout = true, .ksm = true, .reclaim = true}, 200, "");
  EXPECT_EQ(c.mismatches, 0);
  EXPECT_LT(c.both_refused, 40) << "too many scenarios refused by both: the generator needs fixing";
  EXPECT_EQ(read_machine_state(), before);
}

// The CI slice of the KSM-heavy campaign (`rmapkit fuzz --profile ksm-sharers` runs
// thousands): scenarios whose contents have hundreds of sharers, so that stable-node chains
// form, refill (with and without prune passes), lose their dups and collapse; reports
// and the KSM counters after every `ksm` must agree.
TEST(Differential, FortyKsmHeavyScenariosGiveIdenticalReportsAndKsmCounters) {
  if (auto why = kernel_unavailable(); !why.empty()) GTEST_SKIP() << "the kernel back end cannot run here: " << why;
  auto before = read_machine_state();
  model::run_options counters;
  counters.ksm_counters = true;
  const auto c = run_campaign({.ksm_heavy = true}, 40, "ksm-heavy-", counters);
  EXPECT_EQ(c.mismatches, 0);
  EXPECT_EQ(c.both_refused, 0) << "--ksm-heavy scenarios run to their end on both back ends";
  EXPECT_GE(c.with_chains, 8) << "too few of the 40 scenarios made a stable-node chain: the generator misses its aim";
  EXPECT_EQ(read_machine_state(), before);
}

// The CI slice of `rmapkit fuzz --profile neighbours`: mappings into regions beside and over
// their VMAs (joins at mmap, MAP_FIXED), with executable protections, among forks and COW.
TEST(Differential, TwoHundredScenariosWithNeighbouringMappingsGiveIdenticalReports) {
  if (auto why = kernel_unavailable(); !why.empty()) GTEST_SKIP() << "the kernel back end cannot run here: " << why;
  auto before = read_machine_state();
  const auto c = run_campaign({.statements = 70, .pageout = false, .neighbours = true}, 200, "neighbours-");
  EXPECT_EQ(c.mismatches, 0);
  EXPECT_EQ(c.both_refused, 0) << "--neighbours scenarios run to their end on both back ends";
  EXPECT_EQ(read_machine_state(), before);
}

}  // namespace
}  // namespace rmapkit::testing
