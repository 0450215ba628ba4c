// `rmapkit show` and `rmapkit walk` as a user meets them: each bad input gets one line
// naming it and exit status 2, and nothing on standard output.
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/subprocess.h"

namespace rmapkit::testing {
namespace {

const char* const SCENARIO =
    "spawn P\n"
    "P: mmap A anon private pages=4\n"
    "P: write A[0:2]\n"
    "P: fork C\n";

struct bad {
  std::vector<std::string> args;
  std::string err;
};

TEST(ViewCli, BadInputIsOneClearLineAndExit2) {
  const auto path = temp_file("view.rmap", SCENARIO);
  const std::vector<bad> cases = {
      {{"show", path, "--at", "9"}, path + ": --at 9: the scenario has only 4 statements\n"},
      {{"show", path, "--at", "line:7"}, path + ": --at line:7: line 7 holds no statement\n"},
      {{"show", path, "--pid", "X"}, path + ": --pid X: no such process in the scenario\n"},
      {{"show", path, "--at", "1", "--pid", "C"}, path + ": --pid C: the process is not alive after statement 1\n"},
      {{"show", path, "--frame", "3"}, path + ": no frame 3: 2 frames are in use here (ids 1 to 2)\n"},
      {{"show", path, "--file", "F"}, path + ": --file F: no such file is open after statement 4\n"},
      {{"walk", path, "--frame", "0"}, path + ": no frame 0: 2 frames are in use here (ids 1 to 2)\n"},
      {{"walk", path, "--page", "C:A:3"},
       path + ": --page C:A:3: not mapped to a frame: its PTE holds nothing (pte_none)\n"},
      {{"walk", path, "--page", "C:A"}, path + ": --page C:A: expected PROCESS:REGION:INDEX\n"},
      {{"walk", path, "--page", "P:A:0", "--op", "mkclean"},
       path + ": --op mkclean: folio_mkclean() cleans page-cache folios; this frame is anonymous\n"},
      {{"walk", path}, path + ": which frame? --frame K or --page P:REGION:IDX\n"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> argv{rmapkit_bin()};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    const auto o = run(argv);
    EXPECT_EQ(o.exit_code, 2) << c.args[0] << " " << c.args.back();
    EXPECT_EQ(o.err, c.err);
    EXPECT_EQ(o.out, "");
  }
  const auto design = run({rmapkit_bin(), "show", path, "--design", "linux-2.4"});
  EXPECT_EQ(design.exit_code, 2);
  EXPECT_NE(design.err.find("--design: unknown rmap design 'linux-2.4' (known: linux-6,"), std::string::npos)
      << design.err;
  const auto file_design = run({rmapkit_bin(), "show", path, "--design", "linux-6+btree"});
  EXPECT_EQ(file_design.exit_code, 2);
  EXPECT_NE(file_design.err.find("unknown or repeated design part 'btree' in 'linux-6+btree' (file designs: "),
            std::string::npos)
      << file_design.err;
}

TEST(ViewCli, AScenarioErrorOnTheWayIsTheScenariosError) {
  // Only the running model refuses it (the scenario itself is valid): reclaim with KSM pages.
  const auto path = temp_file("refused.rmap",
                              "spawn P\nP: mmap A anon private pages=2\nP: madvise A mergeable\n"
                              "P: write A[0:2] value=7\nksm\nreclaim\nP: write A[0]\n");
  const auto o = run({rmapkit_bin(), "show", path});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_EQ(o.err, path + ":6: reclaim: refused while KSM pages exist (P at 0x100000000000)\n") << o.err;
  EXPECT_EQ(o.out, "");
}

TEST(ViewCli, ShowAndWalkPrintJson) {
  const auto path = temp_file("json.rmap", SCENARIO);
  const auto show = run({rmapkit_bin(), "show", path, "--json"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  const auto s = nlohmann::json::parse(show.out);
  EXPECT_EQ(s["kind"], "show");
  EXPECT_EQ(s["folios"].size(), 2U);
  EXPECT_EQ(s["folios"][0]["mapcount"], 2);
  const auto walk = run({rmapkit_bin(), "walk", path, "--page", "P:A:1", "--op", "referenced", "--json"});
  ASSERT_EQ(walk.exit_code, 0) << walk.err;
  const auto w = nlohmann::json::parse(walk.out);
  EXPECT_EQ(w["kind"], "walk");
  EXPECT_EQ(w["frame"], 2);
  EXPECT_EQ(w["counts"]["vmas_visited"], 2);
}

// The child's COW copy belongs to its own anon_vma from 2.6.34 on, so only 2.6.7's
// family-wide list still visits the parent, which maps another frame there.
TEST(ViewCli, WalkUnderEveryDesignSideBySide) {
  const auto path = temp_file("cow.rmap", std::string(SCENARIO) + "C: write A[0]\n");
  const auto o = run({rmapkit_bin(), "walk", path, "--page", "C:A:0", "--all-designs"});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  const auto table = o.out.substr(o.out.find("design    "));
  EXPECT_EQ(table,
            "design          entries  vmas_visited  ptes_examined  misses\n"
            "linux-6               1             1              1       0\n"
            "linux-3.19            1             1              1       0\n"
            "linux-2.6.34          1             1              1       0\n"
            "linux-2.6.7           2             2              2       1\n"
            "pte-chain             1             1              1       0\n"
            "legoos                1             1              1       0\n");
  EXPECT_NE(o.out.find("the PTE maps another frame"), std::string::npos);
}

}  // namespace
}  // namespace rmapkit::testing
