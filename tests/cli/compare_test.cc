// rmapkit compare and the workload generators, as a user runs them.
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/subprocess.h"

namespace rmapkit::testing {
namespace {

std::string generated(const std::vector<std::string>& args) {
  std::vector<std::string> argv{rmapkit_bin(), "gen"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto o = run(argv);
  EXPECT_EQ(o.exit_code, 0) << o.err;
  return o.out;
}

TEST(Gen, EveryWorkloadResolves) {
  for (const auto& args : std::vector<std::vector<std::string>>{{"fanout", "--children", "3"},
                                                                {"forkchain", "--generations", "5"},
                                                                {"fileshare", "--processes", "3", "--pages", "4"},
                                                                {"filewindows", "--processes", "3", "--windows", "5"},
                                                                {"ksm", "--pages", "300", "--children", "2"},
                                                                {"buildstorm", "--jobs", "5", "--parallel", "2"}}) {
    auto path = temp_file("w.rmap", generated(args));
    auto lint = run({rmapkit_bin(), "lint", path});
    EXPECT_EQ(lint.exit_code, 0) << args[0] << ": " << lint.err;
  }
}

TEST(Gen, BadSizesAreRefused) {
  auto o = run({rmapkit_bin(), "gen", "fanout", "--children", "0"});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find("--children"), std::string::npos) << o.err;
}

TEST(Gen, FileWindowsAreTheSameForOneSeedAndOthersForAnother) {
  const std::vector<std::string> a{"filewindows", "--processes", "2", "--windows", "3", "--pages", "100"};
  auto b = a;
  b.insert(b.end(), {"--seed", "2"});
  EXPECT_EQ(generated(a), generated(a));
  EXPECT_NE(generated(a), generated(b));
  auto o = run({rmapkit_bin(), "gen", "filewindows", "--window-pages", "8", "--pages", "4"});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_EQ(o.err, "rmapkit gen filewindows: the file must hold a window and fit the limit\n");
}

TEST(Compare, FileDesignsRunEachDesignUnderEachAndTheListsReadEveryWindow) {
  auto path = temp_file("fw.rmap", generated({"filewindows", "--processes", "8", "--windows", "8"}));
  auto o = run({rmapkit_bin(), "compare", "--json", "--repeat", "1", "--designs", "linux-6", "--file-designs",
                "interval-tree,prio-tree,list", path});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  auto j = nlohmann::json::parse(o.out);
  ASSERT_EQ(j["designs"].size(), 3U);
  std::map<std::string, double> per_walk;
  for (const auto& d : j["designs"]) {
    double walks = d["walks"]["walks"], entries = d["walks"]["entries"];
    per_walk[d["design"]] = entries / walks;
  }
  EXPECT_GT(per_walk.at("linux-6+list"), 20.0) << "64 windows, read until every mapping was seen";
  EXPECT_LT(per_walk.at("linux-6"), 10.0);
  EXPECT_LT(per_walk.at("linux-6+prio-tree"), 15.0);
  auto bad = run({rmapkit_bin(), "compare", "--file-designs", "btree", path});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("btree"), std::string::npos) << bad.err;
}

TEST(Compare, FanoutWalksVisitTheWholeFamilyOnlyUnderTheOneAnonVmaDesign) {
  auto path = temp_file("fan.rmap", generated({"fanout", "--children", "20", "--pages", "2"}));
  auto o = run({rmapkit_bin(), "compare", "--json", path});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  auto j = nlohmann::json::parse(o.out);
  ASSERT_EQ(j["designs"].size(), 6U);
  std::map<std::string, double> per_walk;
  for (const auto& d : j["designs"]) {
    double walks = d["walks"]["walks"], entries = d["walks"]["entries"];
    ASSERT_GT(walks, 0);
    per_walk[d["design"]] = entries / walks;
  }
  // 20 children each COW both pages: a child's page is found through its own anon_vma
  // (one entry) except under 2.6.7, whose single family list holds all 21 VMAs.
  EXPECT_DOUBLE_EQ(per_walk["linux-6"], 1.0);
  EXPECT_DOUBLE_EQ(per_walk["linux-2.6.34"], 1.0);
  EXPECT_DOUBLE_EQ(per_walk["pte-chain"], 1.0);
  EXPECT_GT(per_walk["linux-2.6.7"], 5.0);
}

TEST(Compare, ForkChainGrowsWithoutReuseOnly) {
  auto path = temp_file("chain.rmap", generated({"forkchain", "--generations", "60", "--pages", "4"}));
  auto o = run({rmapkit_bin(), "compare", "--json", "--designs", "linux-6,linux-3.19,linux-2.6.34", path});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  auto j = nlohmann::json::parse(o.out);
  std::map<std::string, std::uint64_t> peak_anon_vmas;
  for (const auto& d : j["designs"])
    for (const auto& obj : d["objects"])
      if (obj["type"] == "anon_vma") peak_anon_vmas[d["design"]] = obj["peak"];
  EXPECT_LE(peak_anon_vmas["linux-6"], 3U);
  EXPECT_LE(peak_anon_vmas["linux-3.19"], 3U);
  EXPECT_EQ(peak_anon_vmas["linux-2.6.34"], 61U) << "one anon_vma per generation, all pinned";
}

// A scenario with large folios runs under every design, with the same report.
TEST(Compare, LargeFoliosRunUnderEveryDesign) {
  const std::string scenario = std::string(RMAPKIT_SCENARIO_DIR) + "/v2/03_anon_64k_fork_cow_reuse.rmap";
  auto j = run({rmapkit_bin(), "compare", "--json", "--repeat", "1", scenario});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  const auto doc = nlohmann::json::parse(j.out);
  EXPECT_TRUE(doc.at("designs_agree").get<bool>());
  std::vector<std::string> ran;
  for (const auto& d : doc.at("designs")) ran.push_back(d.at("design").get<std::string>());
  EXPECT_EQ(ran,
            (std::vector<std::string>{"linux-6", "linux-3.19", "linux-2.6.34", "linux-2.6.7", "pte-chain", "legoos"}));
}

TEST(Compare, TableNamesEveryDesignAndUnknownDesignIsAnError) {
  auto path = temp_file("f.rmap", generated({"fanout", "--children", "2"}));
  auto o = run({rmapkit_bin(), "compare", path});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  for (const char* d : {"linux-6", "linux-3.19", "linux-2.6.34", "linux-2.6.7", "pte-chain", "legoos"})
    EXPECT_NE(o.out.find(d), std::string::npos) << d;
  auto bad = run({rmapkit_bin(), "compare", "--designs", "linux-9", path});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("linux-9"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace rmapkit::testing
