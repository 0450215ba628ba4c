// rmapkit fuzz and gen random --profile as a user meets them: every bad argument is an
// error naming it and the reason, with exit status 2 and nothing run; a model-only
// campaign prints its summary and leaves its records; the profiles can be listed and
// printed; the report names a folder it cannot read.
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "support/subprocess.h"

namespace rmapkit::testing {
namespace {

namespace fs = std::filesystem;

std::string fresh_dir(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("rmapkit-fuzz-cli-" + name);
  fs::remove_all(dir);
  return dir.string();
}

TEST(FuzzCli, BadArgumentsNameTheArgumentAndTheReason) {
  const auto out = fresh_dir("bad");
  struct bad {
    std::vector<std::string> args;
    std::string message;
  };
  for (const auto& [args, message] : std::initializer_list<bad>{
           {{"--seeds", "5..2"}, "rmapkit fuzz: --seeds 5..2: the first seed is after the last\n"},
           {{"--seeds", "5-9"}, "rmapkit fuzz: --seeds 5-9: not a range A..B of seeds\n"},
           {{"--count", "0"}, "rmapkit fuzz: --count 0: a campaign has at least one seed\n"},
           {{"--shard", "3/2"}, "rmapkit fuzz: --shard 3/2: not I/N with 0 <= I < N (shard I of N)\n"},
           {{"--shard", "1"}, "rmapkit fuzz: --shard 1: not I/N with 0 <= I < N (shard I of N)\n"},
           {{"--profile", "plain,nope"}, "rmapkit fuzz: --profile: no profile named nope (built in: anon-thp, files, "},
           {{"--profile", "/no/such.json"}, "rmapkit fuzz: --profile: /no/such.json: cannot read the profile file\n"},
           {{"--design", "linux-1"}, "rmapkit fuzz: --design linux-1: unknown rmap design 'linux-1' (known: linux-6, "},
           {{"--design", "linux-6+btree"},
            "rmapkit fuzz: --design linux-6+btree: unknown or repeated design part 'btree' in 'linux-6+btree' (file "
            "designs: interval-tree, prio-tree, list; KSM designs: ksm-chains, ksm-flat)\n"},
           {{"--plant-fault", "gremlin"}, "rmapkit fuzz: --plant-fault gremlin: no such fault (read-as-write)\n"},
       }) {
    std::vector<std::string> argv{rmapkit_bin(), "fuzz", "--model-only", "--out", out};
    argv.insert(argv.end(), args.begin(), args.end());
    auto o = run(argv);
    EXPECT_EQ(o.exit_code, 2) << args[0];
    EXPECT_EQ(o.err.rfind(message, 0), 0U) << o.err;
    EXPECT_EQ(o.out, "");
  }
  EXPECT_FALSE(fs::exists(out)) << "a campaign with bad arguments wrote its folder";
}

TEST(FuzzCli, TheKernelModeWithoutRootSaysWhyAndRunsNothing) {
  const auto out = fresh_dir("nonroot");
  auto o = run({rmapkit_bin(), "fuzz", "--count", "2", "--out", out}, drop_root);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_EQ(o.err.rfind("rmapkit fuzz: the kernel back end cannot run here: not root", 0), 0U) << o.err;
  EXPECT_NE(o.err.find("--model-only needs no kernel"), std::string::npos) << o.err;
}

// Every version 2 profile is compared: `gen random --thp`'s own (random sizes, shmem ones
// among them, with pageout) runs under every design; one with anonymous sizes only too,
// and under one design named.
TEST(FuzzCli, EveryThpProfileRunsUnderEveryDesign) {
  auto profile = temp_file("thp-profile.json", R"({"name": "thp", "thp": true, "statements": 40})");
  const auto out = fresh_dir("thp");
  auto o = run({rmapkit_bin(), "fuzz", "--model-only", "--seeds", "1..4", "--profile", profile, "--out", out});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.out.find("4 scenarios, 4 run (4 agree)"), std::string::npos) << o.out;
  auto mthp = temp_file("mthp-profile.json",
                        R"({"name": "mthp", "thp_anon": "16k,64k,1m", "pageout": false, "statements": 40})");
  const auto out2 = fresh_dir("mthp");
  auto d = run({rmapkit_bin(), "fuzz", "--model-only", "--count", "3", "--profile", mthp, "--out", out2});
  EXPECT_EQ(d.exit_code, 0) << "every design takes large folios: " << d.err;
  auto m = run({rmapkit_bin(), "fuzz", "--model-only", "--design", "pte-chain+list", "--count", "3", "--profile", mthp,
                "--out", out2});
  EXPECT_EQ(m.exit_code, 0) << m.err;
}

TEST(FuzzCli, AModelOnlyCampaignPrintsItsSummaryAndItsReport) {
  const auto out = fresh_dir("model-only");
  auto o = run({rmapkit_bin(), "fuzz", "--model-only", "--seeds", "10..13", "--profile", "fork-trees,files", "--shard",
                "1/2", "--out", out});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_EQ(o.out.rfind("rmapkit fuzz: seeds 10..13, shard 1/2, 2 profile(s), model-only mode: 4 scenarios, 4 run "
                        "(4 agree) in ",
                        0),
            0U)
      << o.out;
  EXPECT_NE(o.out.find("records in " + out + "/results-shard-1-of-2.jsonl\n"), std::string::npos) << o.out;
  auto r = run({rmapkit_bin(), "fuzz", "report", out});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("fuzz report: 4 scenarios from 1 files"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  fork-trees       model-only all                  2              2"), std::string::npos)
      << r.out;
  auto j = run({rmapkit_bin(), "fuzz", "report", "--json", out});
  EXPECT_EQ(j.exit_code, 0);
  EXPECT_NE(j.out.find("\"records\": 4"), std::string::npos) << j.out;
  fs::remove_all(out);
}

TEST(FuzzCli, TheReportNamesWhatItCannotRead) {
  auto r = run({rmapkit_bin(), "fuzz", "report", "/no/such/folder"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "rmapkit fuzz report: /no/such/folder: not a folder of fuzz results\n");
}

TEST(FuzzCli, ProfilesAreListedAndPrinted) {
  auto list = run({rmapkit_bin(), "fuzz", "profiles"});
  EXPECT_EQ(list.exit_code, 0);
  EXPECT_NE(list.out.find("ksm-sharers      KSM at hundreds of sharers"), std::string::npos) << list.out;
  auto one = run({rmapkit_bin(), "fuzz", "profiles", "swap-mix"});
  EXPECT_EQ(one.exit_code, 0);
  EXPECT_NE(one.out.find("\"reclaim\": true"), std::string::npos) << one.out;
  auto none = run({rmapkit_bin(), "fuzz", "profiles", "nope"});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_EQ(none.err, "rmapkit fuzz profiles: no built-in profile named nope\n");
}

TEST(FuzzCli, GenRandomTakesAProfileAndTheOptionsBesideIt) {
  auto o = run({rmapkit_bin(), "gen", "random", "--profile", "fork-trees", "--seed", "3", "--statements", "12"});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_EQ(o.out.rfind("# generated: rmapkit gen random --profile fork-trees --seed 3 --statements 12 --processes 24 "
                        "--pages 12 --no-pageout\n",
                        0),
            0U)
      << o.out;
  auto bad = run({rmapkit_bin(), "gen", "random", "--profile", "nope"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(bad.err.rfind("rmapkit gen random: --profile: no profile named nope", 0), 0U) << bad.err;
  EXPECT_EQ(bad.out, "");
}

}  // namespace
}  // namespace rmapkit::testing
