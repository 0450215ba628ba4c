// The model against the kernel's golden reports, and the model's invariants through
// random scenarios (a RapidCheck property over `rmapkit gen random`).
#include <dirent.h>
#include <chrono>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <iostream>
#include <random>
#include <set>
#include <sstream>
#include <string_view>
#include <utility>

#include <gtest/gtest.h>
#include <rapidcheck.h>

#include "rmapkit/model/model.h"
#include "rmapkit/scenario/generate.h"
#include "rmapkit/scenario/parser.h"
#include "support/subprocess.h"

namespace rmapkit::model {
namespace {

/// rc::check() with RapidCheck's default parameters but the seed given, rather than the
/// random one RapidCheck picks once per process (RC_PARAMS="seed=N" is read only once).
template <typename Testable>
bool check_property(std::uint64_t seed, Testable&& testable) {
  rc::detail::TestParams params;
  params.seed = seed;
  rc::detail::TestMetadata metadata;
  metadata.id = metadata.description = "invariants hold after every statement";
  const auto result = rc::detail::checkTestable(std::forward<Testable>(testable), metadata, params);
  rc::detail::printResultMessage(result, std::cerr);
  std::cerr << "\n";
  return result.template is<rc::detail::SuccessResult>();
}

std::vector<std::string> corpus() { return testing::corpus_names(RMAPKIT_SCENARIO_DIR); }

/// Runs @prog on a fresh machine with every invariant checked after every statement,
/// then tears everything down and checks that nothing leaked.
int run_checked(const scenario::program& prog, std::string& out, std::string& err, bool migrate = false,
                std::string_view design = "linux-6") {
  mm::machine m(design);
  std::ostringstream o, e;
  run_options opts;
  opts.check_invariants = true;
  opts.migrate_everything = migrate;
  int code = run_on(m, prog, o, e, opts);
  out = o.str();
  err = e.str();
  m.drop_swap_cache();
  auto live = m.live();
  if (live.total() != 0) {
    err += "leak after teardown";
    return EXIT_MODEL_BUG;
  }
  return code;
}

std::vector<std::string> designs() {
  auto d = mm::anon_rmap_designs();
  return {d.begin(), d.end()};
}

/// Whether @design's walk order decides scenario @name's result: try_to_unmap() of a lazily
/// freed folio drops the clean mappings it meets before the first dirty one, and the
/// newest-first walks of linux-2.6.7 and pte-chain meet a fork child before its parent.
bool walk_order_decides(const std::string& name, const std::string& design) {
  return name == "113_madvise_free_shared_by_fork" &&
         (design.starts_with("linux-2.6.7") || design.starts_with("pte-chain"));
}

/// Every combination of an anonymous and a file design on every corpus scenario: designs
/// change costs, never results (but for walk_order_decides()).
class ModelCorpus : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(ModelCorpus, ModelPrintsTheKernelsReport) {
  const auto& [name, design] = GetParam();
  std::string base = std::string(RMAPKIT_SCENARIO_DIR) + "/" + name;
  auto sc = scenario::parse_file(base + ".rmap");
  ASSERT_TRUE(sc) << sc.error().str();
  auto prog = scenario::resolve(*sc);
  ASSERT_TRUE(prog) << prog.error().str();
  std::string out, err;
  int code = run_checked(*prog, out, err, false, design);
  ASSERT_EQ(code, 0) << err;
  if (walk_order_decides(name, design)) {
    // The walk meets the child's dirty PTE first and stops before it drops the parent's
    // clean one: the parent keeps its pages, which reclaim then swaps out.
    EXPECT_NE(out, testing::slurp(base + ".expected"));
    EXPECT_NE(out.find("page P A 0 swap="), std::string::npos) << out;
    return;
  }
  EXPECT_EQ(out, testing::slurp(base + ".expected"));
}

INSTANTIATE_TEST_SUITE_P(Scenarios, ModelCorpus,
                         ::testing::Combine(::testing::ValuesIn(corpus()),
                                            ::testing::ValuesIn(mm::rmap_design_combinations())),
                         [](const auto& tp) {
                           std::string design = std::get<1>(tp.param);
                           std::replace_if(
                               design.begin(), design.end(), [](char c) { return !std::isalnum(c); }, '_');
                           return std::get<0>(tp.param) + "_" + design;
                         });

/// The version 2 corpus (tests/scenarios/v2/, large folios) that the model runs: each must
/// print the kernel's report. A scenario the model does not run yet must stop at a
/// statement it names as not modelled (not_modelled_in()), never answer wrongly: a new
/// large-folio feature moves scenarios from the second kind to this list.
const std::set<std::string> V2_MODELLED = {
    "01_anon_first_fault_order_rule",
    "02_anon_pmd_fault_and_huge_zero",
    "03_anon_64k_fork_cow_reuse",
    "04_anon_pmd_fork_cow_reuse",
    "05_anon_64k_mm_id_slots",
    "06_anon_64k_partial_unmap_shrink",
    "07_anon_pmd_partial_munmap_shrink",
    "08_anon_pmd_vma_split_mprotect",
    "09_anon_mremap_pmd",
    "10_anon_64k_mlock",
    "11_anon_64k_ksm_split",
    "12_anon_64k_pageout",
    "13_anon_collapse",
    "14_shmem_64k_fault_around_fork",
    "15_shmem_pmd_vma_split_zaps",
    "16_anon_pmd_dontfork_then_fork",
    "17_anon_64k_reclaim_fork_shared",
    "18_anon_pt_reclaim_decides_pmd",
    "23_anon_64k_mlocked_split_keeps_zero_pages",
    "19_anon_64k_reuse_needs_two_mapped_pages",
    "20_anon_64k_halves_in_two_processes",
    "21_anon_64k_mm_id_slots_reuse",
    "22_anon_64k_shared_split_in_both",
    "24_anon_pmd_mremap_shrink_child_maps_whole",
    "25_anon_huge_zero_pmd_fork",
    "26_anon_huge_zero_pmd_mprotect_split",
    "27_anon_collapse_fork_shared",
    "28_anon_pmd_ksm_split",
    "29_anon_64k_pageout_half_then_swapin",
    "30_anon_64k_pageout_skips_shared",
    "31_shmem_file_hole_refault_64k",
    "32_shmem_pmd_second_mapping_fork",
    "33_anon_64k_vma_split_inside_folio",
    "34_anon_64k_mremap_move_keeps_folios",
    "35_anon_smaps_of_large_folios",
    "36_anon_order_rule_larger_sizes",
    "37_anon_collapse_of_huge_zero_and_mthp",
    "38_anon_64k_clear_refs_referenced",
    "39_anon_64k_madvise_free_and_cold",
    "40_shmem_64k_partial_munmap_not_queued",
    "41_anon_16k_split_remaps_after_an_mlocking_parent",
    "42_anon_16k_reuse_across_a_vma_split_keeps_the_anon_vma",
    "43_anon_16k_mprotect_gathers_accessed_bits",
    "44_anon_16k_mprotect_batches_respect_the_write_bit",
    "45_anon_64k_shrink_reclaims_lazily_freed_folios",
    "46_anon_pmd_lazily_freed_then_written_splits_the_pmd",
    "47_anon_pmd_mlock_populate_reads_leave_the_pmd_old",
    "48_anon_pmd_mlock_moves_a_boundary_inside_a_pmd",
    "49_anon_64k_ksm_split_remaps_the_child_first_after_a_vma_split",
    "50_shmem_128k_fault_around_maps_the_whole_folio",
    "51_shmem_64k_fault_around_of_folios_across_a_vma_split",
    "52_shmem_pmd_private_write_zaps_and_copies_one_page",
    "53_anon_pmd_split_in_a_locked_vma_keeps_the_mlock",
    "54_anon_pmd_reclaim_splits_before_swap",
    "55_shmem_mlock_maps_and_mlocks_whole_folios",
    "56_shmem_64k_pageout_swaps_written_folios_page_by_page",
    "57_shmem_64k_pageout_or_cold_of_part_splits_and_unmaps_all",
    "58_shmem_64k_reclaim_swaps_split_pages_and_drops_clean_folios",
    "59_shmem_pmd_pageout_whole_and_part",
    "60_shmem_64k_split_unmaps_a_locked_mapping_too",
    "61_shmem_64k_hole_splits_folios_non_uniformly",
    "62_shmem_pmd_hole_splits_the_folio_non_uniformly",
    "63_shmem_64k_holes_through_clean_locked_and_private_mappings",
};

class ModelCorpusV2 : public ::testing::TestWithParam<std::string> {};

TEST_P(ModelCorpusV2, ModelPrintsTheKernelsReportOrSaysWhatItDoesNotModel) {
  const std::string base = std::string(RMAPKIT_SCENARIO_DIR) + "/v2/" + GetParam();
  auto sc = scenario::parse_file(base + ".rmap");
  ASSERT_TRUE(sc) << sc.error().str();
  auto prog = scenario::resolve(*sc);
  ASSERT_TRUE(prog) << prog.error().str();
  std::string out, err;
  const int code = run_checked(*prog, out, err);
  if (V2_MODELLED.contains(GetParam())) {
    ASSERT_EQ(code, 0) << err;
    EXPECT_EQ(out, testing::slurp(base + ".expected"));
    EXPECT_FALSE(not_modelled_in(*prog));
    return;
  }
  EXPECT_EQ(code, scenario::EXIT_SCENARIO_ERROR) << "not listed as modelled, yet it ran:\n" << out << err;
  const auto d = not_modelled_in(*prog);
  ASSERT_TRUE(d) << err;
  EXPECT_NE(err.find(d->message), std::string::npos) << err;
  EXPECT_NE(d->message.find("`rmapkit kernel` runs this scenario"), std::string::npos) << d->message;
}

INSTANTIATE_TEST_SUITE_P(Scenarios, ModelCorpusV2,
                         ::testing::ValuesIn(testing::corpus_names(std::string(RMAPKIT_SCENARIO_DIR) + "/v2")));

/// Where an older design's walk order decides a version 2 scenario's result, and a line of
/// its report that shows the other answer. A split maps zero-filled pages to the zero page
/// mapping by mapping in walk order, and a page it met in an mlocked VMA is mlocked and
/// stays everywhere after (41, 49: 2.6.34's list is oldest first, 2.6.7's newest first, a
/// PTE chain newest first and LegoOS's list as it was filled, where the interval tree gives
/// 6.18's order; in 49 under 2.6.7 the child keeps pages that KSM then merges in place,
/// shared); try_to_unmap() of a lazily freed folio drops the clean mappings it meets before
/// the first dirty one (45, as v1's 113).
struct walk_order_case {
  std::string_view scenario, design, line;
};
constexpr std::array V2_WALK_ORDER_DECIDES{
    walk_order_case{"41_anon_16k_split_remaps_after_an_mlocking_parent", "linux-2.6.7", "page C A 1 zero\n"},
    walk_order_case{"45_anon_64k_shrink_reclaims_lazily_freed_folios", "linux-2.6.7",
                    "page Q D 0 frame=29 count=2 anon folio=2 order=4 sub=0 dirty lru active\n"},
    walk_order_case{"49_anon_64k_ksm_split_remaps_the_child_first_after_a_vma_split", "linux-2.6.7",
                    "page C A 20 frame=17 count=1 anon\n"},
    walk_order_case{"49_anon_64k_ksm_split_remaps_the_child_first_after_a_vma_split", "linux-2.6.34",
                    "page C A 16 frame=17 count=2 anon\n"},
    walk_order_case{"41_anon_16k_split_remaps_after_an_mlocking_parent", "pte-chain", "page C A 1 zero\n"},
    walk_order_case{"45_anon_64k_shrink_reclaims_lazily_freed_folios", "pte-chain",
                    "page Q D 0 frame=29 count=2 anon folio=2 order=4 sub=0 dirty lru active\n"},
    walk_order_case{"49_anon_64k_ksm_split_remaps_the_child_first_after_a_vma_split", "legoos",
                    "page C A 16 frame=17 count=2 anon\n"},
};

/// Every design combination on the version 2 corpus prints the kernel's report, but where
/// its walk order decides. A test per design, each scenario in turn.
class ModelCorpusV2Designs : public ::testing::TestWithParam<std::string> {};

TEST_P(ModelCorpusV2Designs, LargeFolioDesignsPrintTheKernelsReportTheOthersRefuse) {
  const std::string& design = GetParam();
  const std::string anon = design.substr(0, design.find('+'));
  for (const auto& name : V2_MODELLED) {
    SCOPED_TRACE(name);
    const std::string base = std::string(RMAPKIT_SCENARIO_DIR) + "/v2/" + name;
    auto sc = scenario::parse_file(base + ".rmap");
    ASSERT_TRUE(sc) << sc.error().str();
    auto prog = scenario::resolve(*sc);
    ASSERT_TRUE(prog) << prog.error().str();
    std::string out, err;
    const int code = run_checked(*prog, out, err, false, design);
    ASSERT_EQ(code, 0) << err;
    const auto* decided = std::find_if(V2_WALK_ORDER_DECIDES.begin(), V2_WALK_ORDER_DECIDES.end(),
                                       [&](const auto& c) { return c.scenario == name && c.design == anon; });
    if (decided != V2_WALK_ORDER_DECIDES.end()) EXPECT_NE(out.find(decided->line), std::string::npos) << out;
    else EXPECT_EQ(out, testing::slurp(base + ".expected"));
  }
}

INSTANTIATE_TEST_SUITE_P(Designs, ModelCorpusV2Designs, ::testing::ValuesIn(mm::rmap_design_combinations()),
                         [](const auto& tp) {
                           std::string design = tp.param;
                           std::replace_if(
                               design.begin(), design.end(), [](char c) { return !std::isalnum(c); }, '_');
                           return design;
                         });

/// Whether a run of @prog under linux-6 (ksm-chains) ever had max_page_sharing (256)
/// mappings of KSM pages: only then can a content have filled a KSM page, where ksm-flat
/// would have given it more.
bool ksm_mappings_reached_the_limit(const scenario::program& prog) {
  mm::machine m("linux-6");
  bool reached = false;
  run_options opts;
  opts.on_statement = [&](const scenario::op&, std::chrono::nanoseconds) {
    const auto k = m.ksm_counters();
    reached = reached || k.pages_shared + k.pages_sharing >= mm::KSM_MAX_PAGE_SHARING;
  };
  std::ostringstream o, e;
  (void)run_on(m, prog, o, e, opts);
  return reached;
}

/// The pre-4.13 flat stable tree on every corpus scenario: the kernel's report, except
/// where KSM merged max_page_sharing (256) mappings or more; there ksm-flat may put more
/// mappings on one page than the kernel does: a design that changes results, not only
/// costs. At least one corpus scenario shows it.
class ModelCorpusKsmFlat : public ::testing::TestWithParam<std::string> {};

TEST_P(ModelCorpusKsmFlat, SameReportUnlessAContentOutgrewMaxPageSharing) {
  std::string base = std::string(RMAPKIT_SCENARIO_DIR) + "/" + GetParam();
  auto sc = scenario::parse_file(base + ".rmap");
  ASSERT_TRUE(sc) << sc.error().str();
  auto prog = scenario::resolve(*sc);
  ASSERT_TRUE(prog) << prog.error().str();
  std::string out, err;
  ASSERT_EQ(run_checked(*prog, out, err, false, "linux-6+ksm-flat"), 0) << err;
  if (out != testing::slurp(base + ".expected")) {
    EXPECT_TRUE(ksm_mappings_reached_the_limit(*prog)) << "ksm-flat differs from the kernel below 256 KSM mappings";
  }
}

INSTANTIATE_TEST_SUITE_P(Scenarios, ModelCorpusKsmFlat, ::testing::ValuesIn(corpus()));

TEST(ModelDesigns, KsmFlatDiffersFromTheKernelWhereAPageFilled) {
  auto sc = scenario::parse_file(std::string(RMAPKIT_SCENARIO_DIR) + "/68_ksm_checksum_before_the_stable_tree.rmap");
  ASSERT_TRUE(sc);
  auto prog = scenario::resolve(*sc);
  ASSERT_TRUE(prog);
  std::string flat, chains, err;
  ASSERT_EQ(run_checked(*prog, flat, err, false, "linux-6+ksm-flat"), 0) << err;
  ASSERT_EQ(run_checked(*prog, chains, err, false, "linux-6"), 0) << err;
  EXPECT_NE(flat.find("page P A 1 frame=1 count=257 anon ksm"), std::string::npos) << "257 on one page";
  EXPECT_EQ(chains.find("count=257"), std::string::npos);
}

TEST(ModelDesigns, AllSixHistoricalDesignsAreRegistered) {
  EXPECT_EQ(designs(),
            (std::vector<std::string>{"linux-6", "linux-3.19", "linux-2.6.34", "linux-2.6.7", "pte-chain", "legoos"}));
}

TEST(ModelDesigns, ThreeFileDesignsCombineWithEveryAnonymousOne) {
  auto f = mm::file_rmap_designs();
  EXPECT_EQ(std::vector<std::string>(f.begin(), f.end()),
            (std::vector<std::string>{"interval-tree", "prio-tree", "list"}));
  const auto all = mm::rmap_design_combinations();
  EXPECT_EQ(all.size(), 18U);
  EXPECT_EQ(all.front(), "linux-6");
  EXPECT_EQ(all.back(), "legoos+list");
  EXPECT_EQ(mm::machine("linux-2.6.7+prio-tree").design_name(), "linux-2.6.7+prio-tree");
  EXPECT_EQ(mm::machine("linux-6+interval-tree").design_name(), "linux-6");
  EXPECT_THROW(mm::machine("linux-6+btree"), std::invalid_argument);
  EXPECT_THROW(mm::machine("linux-6+list+prio-tree"), std::invalid_argument);
  EXPECT_EQ(mm::machine("linux-6+ksm-flat+list").design_name(), "linux-6+list+ksm-flat");
  auto k = mm::ksm_rmap_designs();
  EXPECT_EQ(std::vector<std::string>(k.begin(), k.end()), (std::vector<std::string>{"ksm-chains", "ksm-flat"}));
  EXPECT_EQ(mm::machine("linux-6+ksm-chains").design_name(), "linux-6");
  EXPECT_THROW(mm::machine("linux-7"), std::invalid_argument);
}

/// RapidCheck's seed for the property: fixed, so that every run (CI's, a user's ctest)
/// checks the same scenarios and a failure is one that reproduces, unless
/// RMAPKIT_PROPERTY_SEED asks for another (a number) or for a new one each run ("random").
std::uint64_t property_seed() {
  constexpr std::uint64_t fixed = 20240917;
  const char* env = std::getenv("RMAPKIT_PROPERTY_SEED");
  if (!env || !*env) return fixed;
  if (std::string_view(env) == "random") return (std::uint64_t{std::random_device{}()} << 32) | std::random_device{}();
  return std::strtoull(env, nullptr, 10);
}

/// Random scenarios of every statement kind the model runs, with every invariant checked
/// after every statement and a leak check at the end. A failing case prints its seed:
/// `rmapkit gen random --seed N --statements S --processes P --pages G` reproduces it.
/// The cases come from a fixed RapidCheck seed (property_seed()); set
/// RMAPKIT_PROPERTY_SEED=random to explore new ones each run, or =N to repeat run N (the
/// test prints the seed it used).
TEST(ModelProperty, InvariantsHoldAfterEveryStatementOfRandomScenarios) {
  // 100,000 statements by default; the sanitizer build (ten times slower) asks for fewer.
  std::uint64_t budget = 100000;
  if (const char* env = std::getenv("RMAPKIT_PROPERTY_STATEMENTS")) budget = std::strtoull(env, nullptr, 10);
  const std::uint64_t seed = property_seed();
  std::cerr << "RMAPKIT_PROPERTY_SEED=" << seed << " reproduces this run\n";
  // RapidCheck prints the seed of its configuration, read once, from RC_PARAMS: the same one.
  ::setenv("RC_PARAMS", fmt::format("seed={}", seed).c_str(), 0);
  std::uint64_t statements = 0;
  bool ok = true;
  // Rounds of RapidCheck's default 100 cases until the budget is spent; the round number
  // enters RapidCheck's seed and the scenarios' seeds, so every round runs new scenarios.
  for (std::uint64_t round = 0; ok && statements < budget; ++round)
    ok = check_property(seed + round, [&] {
      scenario::random_options o;
      o.seed = *rc::gen::arbitrary<std::uint32_t>() + (round << 32);
      o.statements = *rc::gen::inRange(100U, 500U);
      o.max_processes = *rc::gen::inRange(1U, 9U);
      o.max_region_pages = *rc::gen::inRange(1U, 40U);
      o.ksm = *rc::gen::arbitrary<bool>();
      o.reclaim = *rc::gen::arbitrary<bool>();
      auto text = scenario::generate_random(o);
      auto sc = scenario::parse(text, fmt::format("seed-{}.rmap", o.seed));
      RC_ASSERT(sc.has_value());
      auto prog = scenario::resolve(*sc);
      RC_ASSERT(prog.has_value());
      std::string out, err;
      int code = run_checked(*prog, out, err);
      RC_LOG() << text.substr(0, text.find('\n')) << "\n" << err;
      // 2 is a refusal only the running memory manager decides: mremap of a region that is
      // several VMAs, reclaim while KSM pages exist.
      RC_ASSERT_FALSE(code == EXIT_MODEL_BUG || (code == 2 && err.find("not one VMA") == std::string::npos &&
                                                 err.find("KSM pages exist") == std::string::npos));
      statements += prog->ops.size();
      // Migration of every frame after every statement changes no report and breaks no
      // invariant (checked on a share of the cases: it is the most expensive part).
      // Every other design gives the same reports and keeps its own invariants.
      const auto names = mm::rmap_design_combinations();
      const auto& design = names[1 + o.seed % (names.size() - 1)];
      std::string dout, derr;
      int dcode = run_checked(*prog, dout, derr, false, design);
      RC_LOG() << design << ": " << derr;
      RC_ASSERT(dcode == code);
      RC_ASSERT(dout == out);
      if (o.seed % 8 == 0) {
        std::string mout, merr;
        int mcode = run_checked(*prog, mout, merr, true);
        RC_LOG() << merr;
        RC_ASSERT(mcode == code);
        RC_ASSERT(mout == out);
      }
    });
  std::cerr << statements << " statements checked\n";
  EXPECT_TRUE(ok);
  EXPECT_GE(statements, budget) << "the run must cover its budget of statements";
}

}  // namespace
}  // namespace rmapkit::model
