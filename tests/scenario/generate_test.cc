// Everything `rmapkit gen` writes is a valid scenario: it passes `lint` (parse and
// resolve) and runs to its end on the model, every invariant checked, under every
// option; and `gen random` grows linearly with its statements.
#include <sstream>
#include <string>
#include <variant>
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

// --ksm-heavy aims at KSM's hard places: most of its scenarios share pages, and a good
// share of them have more sharers of one content than max_page_sharing, so that a
// stable-node chain forms; all are valid and run with every invariant checked.
TEST(GenRandom, KsmHeavyScenariosShareAndFormStableNodeChains) {
  int sharing = 0, chains = 0;
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    const auto text = generate_random({.seed = seed, .ksm_heavy = true});
    ASSERT_EQ(lint_and_run(text, "seed.rmap"), "") << first_line(text);
    auto prog = resolve(*parse(text, "seed.rmap"));
    ASSERT_TRUE(prog);
    std::ostringstream out, err;
    model::run_options opts;
    opts.ksm_counters = true;
    bool shared = false, chained = false;
    opts.on_ksm_counters = [&](int, const ksm_counters& k) {
      shared = shared || k.pages_sharing > 0;
      chained = chained || k.stable_node_chains > 0;
    };
    ASSERT_EQ(model::run(*prog, out, err, opts), 0) << err.str();
    sharing += shared ? 1 : 0;
    chains += chained ? 1 : 0;
  }
  EXPECT_GE(sharing, 30) << "of 40 --ksm-heavy scenarios";
  EXPECT_GE(chains, 8) << "of 40 --ksm-heavy scenarios";
}

// Seeds 11 and 96 once resized a region that fork had left as several VMAs; with KSM and
// reclaim, some seeds reclaimed while KSM pages existed.
TEST(GenRandom, SeedsThatOnceWroteInvalidScenariosNowDoNot) {
  for (std::uint64_t seed : {11U, 96U}) {
    const auto text = generate_random({.seed = seed});
    EXPECT_EQ(lint_and_run(text, "seed.rmap"), "") << first_line(text);
  }
}

// --neighbours maps into regions (mmap R[i:j]) and uses the rx/rwx protections; every
// scenario is valid and runs with every invariant checked. Without it, gen random writes
// neither, so the scenarios of every seed written before the option stay as they were.
TEST(GenRandom, NeighboursMapsIntoRegionsWithExecutableProtections) {
  int into = 0, exec = 0;
  for (std::uint64_t seed = 1; seed <= 60; ++seed) {
    const auto text = generate_random({.seed = seed, .statements = 70, .neighbours = true});
    ASSERT_EQ(lint_and_run(text, "seed.rmap"), "") << first_line(text);
    EXPECT_NE(first_line(text).find(" --neighbours"), std::string::npos);
    into += text.find("] anon private") != std::string::npos || text.find("] file F") != std::string::npos;
    exec += text.find(" rx\n") != std::string::npos || text.find("prot=rwx") != std::string::npos;
    const auto plain = generate_random({.seed = seed, .statements = 70});
    EXPECT_EQ(plain.find("] anon"), std::string::npos) << first_line(plain);
    EXPECT_EQ(plain.find("rx"), std::string::npos) << first_line(plain);
  }
  EXPECT_GE(into, 45) << "of 60 --neighbours scenarios, those with a mapping into a region";
  EXPECT_GE(exec, 20) << "of 60 --neighbours scenarios, those with an executable protection";
}

// --thp writes version 2 scenarios: a `thp` line first, every one resolving (the kernel
// back end runs them; the model refuses a `thp` line until it has large folios), and
// between them they use every version 2 form: huge regions of every kind, PMD-sized
// regions, collapse and shrink. The text of a seed without --thp is not changed by the
// option's existence (the draws for it happen only under it).
TEST(GenRandom, ThpWritesResolvingVersion2ScenariosUsingEveryForm) {
  int huge_private = 0, huge_shared = 0, pmd_sized = 0, collapse = 0, shrink = 0;
  for (std::uint64_t seed = 1; seed <= 200; ++seed) {
    const auto text = generate_random({.seed = seed, .thp = true});
    auto sc = parse(text, "seed.rmap");
    ASSERT_TRUE(sc) << sc.error().str();
    auto prog = resolve(*sc);
    ASSERT_TRUE(prog) << first_line(text) << ": " << prog.error().str();
    ASSERT_TRUE(prog->thp) << first_line(text);
    EXPECT_TRUE(std::holds_alternative<st_thp>(sc->statements.front().body)) << first_line(text);
    huge_private += text.find("anon private pages=") != std::string::npos && text.find(" huge\n") != std::string::npos;
    huge_shared += text.find("anon shared pages=") != std::string::npos && text.find(" huge\n") != std::string::npos;
    pmd_sized += text.find("pages=512") != std::string::npos || text.find("pages=1024") != std::string::npos;
    collapse += text.find(" collapse\n") != std::string::npos;
    shrink += text.find("\nshrink\n") != std::string::npos;
  }
  EXPECT_GE(huge_private, 150);
  EXPECT_GE(huge_shared, 50);
  EXPECT_GE(pmd_sized, 100);
  EXPECT_GE(collapse, 10);
  EXPECT_GE(shrink, 150);
  EXPECT_EQ(generate_random({.seed = 7}).find("thp"), std::string::npos);
}

// --no-collapse (profile key collapse: false) leaves collapse out of seeds that have it.
TEST(GenRandom, NoCollapseLeavesCollapseOut) {
  int had = 0;
  for (std::uint64_t seed = 1; seed <= 200; ++seed) {
    const auto without = generate_random({.seed = seed, .thp = true, .collapse = false});
    EXPECT_EQ(without.find(" collapse\n"), std::string::npos) << first_line(without);
    had += generate_random({.seed = seed, .thp = true}).find(" collapse\n") != std::string::npos;
  }
  EXPECT_GE(had, 10);
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

// What gen random builds on: statement_checker gives resolve()'s verdict one statement at
// a time, and a refused statement leaves nothing behind.
TEST(StatementChecker, RefusesWhatResolveRefusesAndARefusalChangesNothing) {
  const std::string text =
      "spawn P\nP: mmap R anon private pages=2\nP: read R[5]\nP: mmap R anon private pages=1\nP: fork P\n"
      "P: mprotect R[1] none\nP: fork C\nC: mremap R pages=3\nC: write R\n";
  auto sc = parse(text, "checked.rmap");
  ASSERT_TRUE(sc) << sc.error().str();
  statement_checker checker("checked.rmap");
  std::vector<std::string> verdicts;
  for (const auto& st : sc->statements) {
    auto r = checker.add(st);
    verdicts.push_back(r ? "ok" : r.error().str());
  }
  EXPECT_EQ(verdicts, (std::vector<std::string>{
                          "ok",
                          "ok",
                          "checked.rmap:3: read: page R[5] outside region R (2 pages)",
                          "checked.rmap:4: mmap: region name R is already used in process P",
                          "checked.rmap:5: name P is already used",
                          "ok",
                          "ok",
                          "checked.rmap:8: mremap: region R is not one VMA covering pages 0 to 1",
                          "checked.rmap:9: write: R[1] is prot=none: the access faults (the kernel refuses it)",
                      }));
  // resolve() of the statements up to the first refusal says the same.
  sc->statements.resize(3);
  auto prog = resolve(*sc);
  ASSERT_FALSE(prog);
  EXPECT_EQ(prog.error().str(), verdicts[2]);
}

// Version 2 rules through the checker: an mmap it refused does not count as the first
// mmap, so a `thp` line after it is still in time; one it took does.
TEST(StatementChecker, ARefusedMmapLeavesTheThpLineInTime) {
  auto sc = parse(
      "spawn P\nP: mmap R anon private pages=0\nthp anon=64k\nP: mmap R anon private pages=2 huge\n"
      "thp anon=2m\n",
      "v2.rmap");
  ASSERT_TRUE(sc) << sc.error().str();
  statement_checker checker("v2.rmap");
  std::vector<std::string> verdicts;
  for (const auto& st : sc->statements) {
    auto r = checker.add(st);
    verdicts.push_back(r ? "ok" : r.error().str());
  }
  EXPECT_EQ(verdicts, (std::vector<std::string>{"ok", "v2.rmap:2: mmap: region R needs at least one page", "ok", "ok",
                                                "v2.rmap:5: thp: given twice (one `thp` line a scenario)"}));
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
