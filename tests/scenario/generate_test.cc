// Everything `rmapkit gen` writes is a valid scenario: it passes `lint` (parse and
// resolve) and runs to its end on the model, every invariant checked, under every
// option; and `gen random` grows linearly with its statements.
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "rmapkit/model/model.h"
#include "rmapkit/scenario/generate.h"
#include "rmapkit/scenario/parser.h"
#include "rmapkit/scenario/workloads.h"

namespace rmapkit::scenario {
namespace {

/// Lints @text and runs it on the model with every invariant checked: the errors, none
/// when it is valid on the model (and so, the rules being the same, on the kernel).
std::string lint_and_run(const std::string& text, const std::string& name) {
  auto sc = parse(text, name);
  if (!sc) return sc.error().str();
  auto prog = resolve(*sc);
  if (!prog) return prog.error().str();
  std::ostringstream out, err;
  model::run_options opts;
  opts.check_invariants = true;
  int code = model::run(*prog, out, err, opts);
  return code == 0 ? std::string{} : fmt::format("exit {}: {}", code, err.str());
}

/// The first line that `rmapkit gen random` with @o writes: how to reproduce a failure.
std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

// 150 seeds under each of five option sets (the defaults, KSM and reclaim together, one
// process, many large regions, nothing machine-wide): 750 scenarios.
TEST(GenRandom, EveryScenarioPassesLintAndRunsOnTheModel) {
  std::vector<random_options> sets(5);
  sets[1].ksm = sets[1].reclaim = true;
  sets[2].max_processes = 1;
  sets[2].max_region_pages = 1;
  sets[3].statements = 200;
  sets[3].max_processes = 9;
  sets[3].max_region_pages = 40;
  sets[3].ksm = sets[3].reclaim = true;
  sets[4].pageout = false;
  for (auto o : sets) {
    for (std::uint64_t seed = 1; seed <= 150; ++seed) {
      o.seed = seed;
      const auto text = generate_random(o);
      EXPECT_EQ(lint_and_run(text, fmt::format("seed-{}.rmap", seed)), "") << first_line(text);
    }
  }
}

// Seeds 11 and 96 once resized a region that fork had left as several VMAs; with KSM and
// reclaim, some seeds reclaimed while KSM pages existed.
TEST(GenRandom, SeedsThatOnceWroteInvalidScenariosNowDoNot) {
  for (std::uint64_t seed : {11U, 96U}) {
    const auto text = generate_random({.seed = seed});
    EXPECT_EQ(lint_and_run(text, "seed.rmap"), "") << first_line(text);
  }
}

TEST(GenRandom, EndsWithACheck) {
  const auto text = generate_random({.seed = 3});
  EXPECT_NE(text.rfind("\ncheck c"), std::string::npos);
  EXPECT_EQ(text.back(), '\n');
  EXPECT_EQ(text.find('\n', text.rfind("\ncheck c") + 1), text.size() - 1) << text;
}

// Quadratic generation took 76 s for 8,000 statements; linear takes about a second for
// 100,000 (the test's timeout catches a return to quadratic time).
TEST(GenRandom, ManyStatementsAreGeneratedInLinearTime) {
  const auto text = generate_random({.seed = 7, .statements = 100000});
  auto sc = parse(text, "big.rmap");
  ASSERT_TRUE(sc) << sc.error().str();
  EXPECT_EQ(sc->statements.size(), 100001U);  // and the final check
}

TEST(GenWorkloads, EveryWorkloadPassesLintRunsOnTheModelAndEndsWithACheck) {
  const std::vector<std::pair<std::string, std::string>> workloads = {
      {"fanout", generate_fanout({.children = 8, .vmas = 3, .pages = 2, .reclaim = true})},
      {"fanout-no-reclaim", generate_fanout({.children = 3, .vmas = 1, .pages = 5, .reclaim = false})},
      {"forkchain", generate_forkchain({.generations = 20, .pages = 8})},
      {"fileshare", generate_fileshare({.processes = 5, .pages = 4})},
      {"ksm", generate_ksm({.pages = 4, .children = 3})},
      {"buildstorm", generate_buildstorm({.jobs = 16, .parallel = 3, .pages = 4})},
  };
  for (const auto& [name, text] : workloads) {
    EXPECT_EQ(lint_and_run(text, name + ".rmap"), "") << name;
    EXPECT_TRUE(text.ends_with("\ncheck end\n")) << name << ":\n" << text;
  }
}

}  // namespace
}  // namespace rmapkit::scenario
