// Differential testing against the kernel: random scenarios run on the model and on the
// live kernel must print identical reports (and refuse the same statements). A mismatch
// is saved as a scenario file, with its diff, under the build tree's differential/ folder,
// ready to be added to the corpus. Set RMAPKIT_DIFF_SEED to explore other seeds.
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <optional>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "rmapkit/scenario/generate.h"
#include "support/machine_state.h"
#include "support/subprocess.h"

namespace rmapkit::testing {
namespace {

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
    scenario::random_options o;
    o.seed = seed;
    o.statements = 60;
    o.pageout = true;
    o.ksm = true;
    o.reclaim = true;
    auto path = temp_file(fmt::format("seed-{}.rmap", seed), scenario::generate_random(o));
    auto r = run({rmapkit_bin(), "diff", path});
    if (r.exit_code == 2) {
      both_refused++;
      continue;
    }
    if (r.exit_code == 0) continue;
    mismatches++;
    auto saved = fmt::format("{}/seed-{}.rmap", out_dir, seed);
    std::ofstream(saved) << slurp(path);
    std::ofstream(saved + ".diff") << r.out << r.err;
    ADD_FAILURE() << "seed " << seed << ": the model and the kernel differ; saved as " << saved << "\n" << r.out << r.err;
  }
  damon.reset();
  EXPECT_EQ(mismatches, 0);
  EXPECT_LT(both_refused, 40) << "too many scenarios refused by both: the generator needs fixing";
  EXPECT_EQ(read_machine_state(), before);
}

}  // namespace
}  // namespace rmapkit::testing
