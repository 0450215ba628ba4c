// rmapkit fuzz's parts that need no kernel: generator profiles, sharding, the minimiser
// (on the model with a planted fault, against the model without it), the signature of a
// diff, a model-only campaign and its resumption, and the report that merges shards. The
// kernel campaign and its minimised cases: tests/kcheck/fuzz_kernel_test.cc.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "rmapkit/lab/diff.h"
#include "rmapkit/lab/fuzz.h"
#include "rmapkit/lab/minimize.h"
#include "rmapkit/scenario/generate.h"
#include "rmapkit/scenario/parser.h"
#include "rmapkit/scenario/profile.h"

namespace rmapkit::lab {
namespace {

namespace sc = rmapkit::scenario;
namespace fs = std::filesystem;

/// A fresh folder under the temporary directory, removed with the object.
struct temp_dir {
  fs::path path;
  temp_dir() {
    std::string tmpl = (fs::temp_directory_path() / "rmapkit-fuzz-XXXXXX").string();
    path = ::mkdtemp(tmpl.data());
  }
  ~temp_dir() { fs::remove_all(path); }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
};

std::size_t count_lines(const fs::path& p) {
  std::ifstream in(p);
  std::size_t n = 0;
  for (std::string line; std::getline(in, line);) ++n;
  return n;
}

TEST(Profiles, EveryBuiltInProfileLoadsAndGeneratesScenariosThatResolve) {
  const auto names = sc::builtin_profile_names();
  for (const char* expected : {"plain", "fork-trees", "mremap-storms", "files", "ksm", "ksm-sharers", "swap-mix"})
    EXPECT_NE(std::find(names.begin(), names.end(), expected), names.end()) << expected;
  for (const auto& name : names) {
    auto p = sc::find_profile(name);
    ASSERT_TRUE(p) << p.error();
    EXPECT_EQ(p->name, name);
    EXPECT_FALSE(p->description.empty()) << name;
    for (std::uint64_t seed = 0; seed < 5; ++seed) {
      auto o = p->options;
      o.seed = seed;
      const auto text = sc::generate_random(o);
      EXPECT_TRUE(text.starts_with(fmt::format("# generated: rmapkit gen random --profile {} --seed {} ", name, seed)));
      auto parsed = sc::parse(text, name);
      ASSERT_TRUE(parsed) << parsed.error().str();
      auto prog = sc::resolve(*parsed);
      EXPECT_TRUE(prog) << name << " seed " << seed << ": " << prog.error().str();
    }
  }
}

TEST(Profiles, PlainIsGenRandomWithoutPageoutAndKsmSharersIsKsmHeavy) {
  auto plain = sc::find_profile("plain");
  auto heavy = sc::find_profile("ksm-sharers");
  ASSERT_TRUE(plain && heavy);
  auto body = [](const std::string& t) { return t.substr(t.find('\n')); };
  for (std::uint64_t seed = 1; seed < 20; ++seed) {
    auto o = plain->options;
    o.seed = seed;
    EXPECT_EQ(body(sc::generate_random(o)), body(sc::generate_random({.seed = seed, .pageout = false})));
    auto h = heavy->options;
    h.seed = seed;
    EXPECT_EQ(body(sc::generate_random(h)), body(sc::generate_random({.seed = seed, .ksm_heavy = true})));
  }
}

TEST(Profiles, TheMixDecidesWhatIsGenerated) {
  // Only forks and touches: no mmap after the first, no munmap at all.
  auto p = sc::parse_profile(R"({"processes": 10, "weights": {"fork": 1, "touch": 3}, "mmap": {"file": 1}})", "t");
  ASSERT_TRUE(p) << p.error();
  const auto text = sc::generate_random(p->options);
  EXPECT_EQ(text.find("munmap"), std::string::npos);
  EXPECT_EQ(text.find("anon private"), std::string::npos);
  EXPECT_NE(text.find(": fork "), std::string::npos);
  EXPECT_NE(text.find(" file F"), std::string::npos);
}

TEST(Profiles, ErrorsNameTheKeyAndTheReason) {
  struct bad {
    const char* text;
    const char* message;
  };
  for (const auto& [text, message] : std::initializer_list<bad>{
           {"{", "t: not a JSON document"},
           {"[1]", "t: a profile is a JSON object"},
           {R"({"statments": 3})", "t: \"statments\": not a profile key"},
           {R"({"processes": 0})", "t: \"processes\": must be a whole number from 1 to 64"},
           {R"({"pages": "many"})", "t: \"pages\": must be a whole number from 1 to 4096"},
           {R"({"ksm": 1})", "t: \"ksm\": must be true or false"},
           {R"({"weights": {"fork": 1, "clone": 2}})", "t: \"weights.clone\": not a weight of weights"},
           {R"({"weights": {"fork": 0}})", "t: \"weights\": every weight is 0"},
           {R"({"mmap": {"file": -1}})", "t: \"mmap.file\": must be a whole number"},
       }) {
    auto p = sc::parse_profile(text, "t");
    ASSERT_FALSE(p) << text;
    EXPECT_TRUE(p.error().starts_with(message)) << p.error();
  }
  auto missing = sc::find_profile("no-such-profile");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().find("no profile named no-such-profile (built in: anon-thp, files, fork-trees"),
            std::string::npos)
      << missing.error();
  auto unreadable = sc::find_profile("/nonexistent/p.json");
  ASSERT_FALSE(unreadable);
  EXPECT_EQ(unreadable.error(), "/nonexistent/p.json: cannot read the profile file");
}

TEST(Profiles, AFileProfileIsNamedByItsFileAndReproducedByItsPath) {
  temp_dir d;
  const auto path = d.path / "mine.json";
  std::ofstream(path) << "// mine\n{\"statements\": 5, \"weights\": {\"touch\": 1}}\n";
  auto p = sc::find_profile(path.string());
  ASSERT_TRUE(p) << p.error();
  EXPECT_EQ(p->name, "mine");
  EXPECT_EQ(p->options.statements, 5U);
  EXPECT_TRUE(
      sc::generate_random(p->options).starts_with("# generated: rmapkit gen random --profile " + path.string()));
}

TEST(Sharding, TheShardsOfACampaignAreDisjointAndAddUpToIt) {
  for (unsigned n : {1U, 2U, 3U, 7U}) {
    std::multiset<std::uint64_t> all;
    for (unsigned i = 0; i < n; ++i)
      for (auto s : seeds_of({.first = 10, .last = 40, .shard_index = i, .shard_count = n})) all.insert(s);
    ASSERT_EQ(all.size(), 31U) << n;
    for (std::uint64_t s = 10; s <= 40; ++s) EXPECT_EQ(all.count(s), 1U) << s;
  }
  EXPECT_EQ(seeds_of({.first = 0, .last = 9, .shard_index = 1, .shard_count = 4}),
            (std::vector<std::uint64_t>{1, 5, 9}));
  EXPECT_TRUE(seeds_of({.first = 0, .last = 9, .shard_index = 4, .shard_count = 4}).empty());
}

TEST(DiffSignature, NamesTheLineKindAndTheFieldThatDiffers) {
  EXPECT_EQ(diff_signature("--- kernel f\n+++ model f\n@@ -1 +1 @@\n-page P R 0 zero\n+page P R 0 frame=1 count=1\n"),
            "page: zero/frame");
  EXPECT_EQ(diff_signature("@@\n-page P1 R0 3 frame=4 count=1 anon excl\n+page P1 R0 3 frame=4 count=1 anon\n"),
            "page: excl/-");
  EXPECT_EQ(diff_signature("@@\n-page P1 R0 3 frame=4 count=2 anon\n+page P1 R0 3 frame=4 count=1 anon\n"),
            "page: count/count");
  EXPECT_EQ(diff_signature("@@\n vma P R 0 1 rw-p anon\n+page P R 0 zero\n"), "page: extra in the model");
  EXPECT_EQ(diff_signature("@@\n-vma P R 0 1 rw-p anon\n"), "vma: missing in the model");
  EXPECT_EQ(diff_signature("@@\n smaps P R 0 2\n-Referenced:            4 kB\n+Referenced:            0 kB\n"),
            "smaps: Referenced");
  EXPECT_EQ(diff_signature("@@\n-Pss_Dirty:             4 kB\n-Shared_Dirty:          4 kB\n"
                           "+Pss_Dirty:             2 kB\n+Shared_Dirty:          8 kB\n"),
            "smaps: Pss_Dirty");
  EXPECT_EQ(diff_signature("@@\n+error: s.rmap:12: mremap: refused: Cannot allocate memory\n"),
            "error: mremap: refused: Cannot allocate memory");
}

/// Whether @text, run on the model with @plant, prints what the model prints without it, in
/// a way whose signature is @signature ("" for: the same).
std::string planted_signature(const std::string& text) {
  auto parsed = sc::parse(text, "t.rmap");
  if (!parsed) return "invalid";
  auto prog = sc::resolve(*parsed);
  if (!prog) return "invalid";
  model::run_options faulty;
  faulty.plant = model::planted_fault::read_as_write;
  auto a = run_model(*prog, {}), b = run_model(*prog, faulty);
  return a.text() == b.text() ? "" : diff_signature(unified_diff("good", a.text(), "faulty", b.text()));
}

TEST(Minimize, APlantedFaultIsCutDownToTheFewStatementsThatShowIt) {
  // Against the model without the fault, as a campaign does against the kernel. The fault
  // shows as a page allocated where the zero page belongs, as a read of a read-only mapping
  // refused as a write, or as a COW where a shared page should stay (a fork and a write more).
  int zero_page_cases = 0;
  for (std::uint64_t seed = 1; seed <= 6; ++seed) {
    const auto text = sc::generate_random({.seed = seed, .statements = 80, .pageout = false});
    const auto sig = planted_signature(text);
    ASSERT_FALSE(sig.empty()) << "seed " << seed << " does not show the planted fault";
    auto r = minimize(text, [&](const std::string& t) { return planted_signature(t) == sig; });
    EXPECT_FALSE(r.exhausted);
    EXPECT_EQ(planted_signature(r.text), sig) << r.text;
    EXPECT_LE(r.statements, 7U) << "seed " << seed << ":\n" << r.text;
    EXPECT_NE(r.text.find(": read "), std::string::npos) << r.text;
    if (sig != "page: zero/frame") continue;
    // spawn, mmap of one page, read, check: nothing else shows it.
    ++zero_page_cases;
    EXPECT_EQ(r.statements, 4U) << "seed " << seed << ":\n" << r.text;
    EXPECT_NE(r.text.find("pages=1\n"), std::string::npos) << r.text;
  }
  EXPECT_GE(zero_page_cases, 1);
}

TEST(Minimize, TheResultIsOneMinimalAndStopsAtItsBudget) {
  const std::string text =
      "# comment\nspawn P\nP: mmap A anon private pages=9\nP: write A[2:7] value=3\nP: fork C\nC: read A[4]\ncheck "
      "one\n"
      "P: munmap A\ncheck two\n";
  auto fails = [](const std::string& t) {
    return t.find("spawn P\n") != std::string::npos && t.find("C: read") != std::string::npos &&
           t.find("mmap A") != std::string::npos && t.find("spawn C") == std::string::npos &&
           t.find("fork C") != std::string::npos;
  };
  auto r = minimize(text, fails);
  EXPECT_EQ(r.text, "spawn P\nP: mmap A anon private pages=1\nP: fork C\nC: read A\n");
  auto capped = minimize(text, fails, {.max_tests = 3});
  EXPECT_TRUE(capped.exhausted);
  EXPECT_EQ(capped.tests, 3U);
  EXPECT_TRUE(fails(capped.text));
}

// The large-folio profiles, model-only: under one design, its invariants checked after
// every statement, every scenario runs to its end; with no design named, every design runs
// each scenario, and none hits a bug (a design whose walk order decides a result may
// print another report: designs-differ).
TEST(FuzzModelOnly, TheLargeFolioProfilesRunCleanUnderOneDesignAndWithoutBugUnderEvery) {
  temp_dir d;
  fuzz_options o;
  o.mode = fuzz_mode::model_only;
  o.out_dir = d.path.string();
  o.seeds = {.first = 0, .last = 19};
  o.profiles.push_back(*sc::find_profile("mthp"));
  o.profiles.push_back(*sc::find_profile("anon-thp"));
  o.profiles.push_back(*sc::find_profile("shmem-thp"));
  o.design = "linux-6";
  auto s = fuzz(o);
  EXPECT_EQ(s.run, 60U);
  EXPECT_TRUE(s.clean());
  EXPECT_EQ(s.outcomes[fuzz_outcome::agree], 60U);
  temp_dir all;
  o.out_dir = all.path.string();
  o.design = "";
  o.seeds = {.first = 0, .last = 9};
  auto every = fuzz(o);
  EXPECT_EQ(every.run, 30U);
  EXPECT_EQ(every.outcomes[fuzz_outcome::model_bug], 0U);
  EXPECT_EQ(every.outcomes[fuzz_outcome::agree] + every.outcomes[fuzz_outcome::designs_differ], 30U);
}

TEST(FuzzModelOnly, EveryDesignAgreesOnEveryProfileAndARerunResumes) {
  temp_dir d;
  fuzz_options o;
  o.mode = fuzz_mode::model_only;
  o.design = "";
  o.out_dir = d.path.string();
  o.seeds = {.first = 0, .last = 3};
  // Version 2 profiles (large folios) run under linux-6 only: below.
  for (const auto& name : sc::builtin_profile_names())
    if (auto p = *sc::find_profile(name); !p.options.thp) o.profiles.push_back(p);
  auto s = fuzz(o);
  EXPECT_EQ(s.planned, 4 * o.profiles.size());
  EXPECT_EQ(s.run, s.planned);
  EXPECT_TRUE(s.clean()) << s.outcomes.size();
  EXPECT_EQ(s.outcomes[fuzz_outcome::agree], s.planned);
  EXPECT_EQ(count_lines(s.results_file), s.planned);
  std::ifstream in(s.results_file);
  std::string line;
  std::getline(in, line);
  auto r = record_from_json(nlohmann::json::parse(line));
  EXPECT_EQ(r.mode, "model-only");
  EXPECT_EQ(r.design, "all");
  EXPECT_GT(r.statements, 10U);
  EXPECT_EQ(to_json(r), nlohmann::json::parse(line));
  // The same campaign again: everything is on record already.
  auto again = fuzz(o);
  EXPECT_EQ(again.resumed, again.planned);
  EXPECT_EQ(again.run, 0U);
  EXPECT_EQ(count_lines(s.results_file), s.planned);
}

TEST(FuzzModelOnly, ATimeLimitLeavesTheRestForARerun) {
  temp_dir d;
  fuzz_options o;
  o.mode = fuzz_mode::model_only;
  o.out_dir = d.path.string();
  o.seeds = {.first = 0, .last = 9, .shard_index = 1, .shard_count = 2};
  o.profiles = {*sc::find_profile("plain")};
  o.time_limit = std::chrono::seconds(0);
  auto s = fuzz(o);
  EXPECT_TRUE(s.out_of_time);
  EXPECT_LE(s.run, 1U);  // the first may start: the limit is checked before each
  EXPECT_EQ(fs::path(s.results_file).filename(), "results-shard-1-of-2.jsonl");
  o.time_limit.reset();
  auto rest = fuzz(o);
  EXPECT_EQ(rest.resumed + rest.run, 5U);
  EXPECT_FALSE(rest.out_of_time);
}

fuzz_record record(std::uint64_t seed, std::string_view release, fuzz_outcome outcome) {
  fuzz_record r;
  r.seed = seed;
  r.profile = "plain";
  r.mode = "kernel";
  r.design = "linux-6";
  r.kernel_release = release;
  r.version = "test";
  r.outcome = outcome;
  if (outcome != fuzz_outcome::agree) {
    r.signature = "page: zero/frame";
    r.case_name = fmt::format("plain-{}", seed);
    r.case_statements = 4;
    r.case_reproduced = true;
  }
  return r;
}

TEST(FuzzReport, MergesShardsPerReleaseAndShowsWhereReleasesDiffer) {
  temp_dir a, b;
  {
    std::ofstream s0(a.path / "results-shard-0-of-2.jsonl"), s1(b.path / "results-shard-1-of-2.jsonl");
    s0 << to_json(record(0, "6.18", fuzz_outcome::agree)).dump() << '\n'
       << to_json(record(2, "6.18", fuzz_outcome::differ)).dump() << '\n'
       << to_json(record(2, "6.19", fuzz_outcome::agree)).dump() << '\n'
       << "{\"seed\": 1}\n";
    s1 << to_json(record(1, "6.18", fuzz_outcome::agree)).dump() << '\n'
       << to_json(record(0, "6.18", fuzz_outcome::agree)).dump() << '\n';  // a rerun: counted once
  }
  std::vector<std::string> errors;
  auto doc = fuzz_report({a.path.string(), b.path.string(), (a.path / "none").string()}, errors);
  ASSERT_EQ(errors.size(), 2U);
  EXPECT_NE(errors[0].find("results-shard-0-of-2.jsonl:4: not a fuzz record"), std::string::npos) << errors[0];
  EXPECT_NE(errors[1].find("none: not a folder of fuzz results"), std::string::npos) << errors[1];
  EXPECT_EQ(doc["records"], 4);
  ASSERT_EQ(doc["releases"].size(), 2U);
  const auto& r618 = doc["releases"][0];
  EXPECT_EQ(r618["kernel_release"], "6.18");
  EXPECT_EQ(r618["scenarios"], 3);
  EXPECT_EQ(r618["outcomes"]["agree"], 2);
  EXPECT_EQ(r618["outcomes"]["differ"], 1);
  ASSERT_EQ(r618["failures"].size(), 1U);
  EXPECT_EQ(r618["failures"][0]["case"]["path"], (a.path / "plain-2.rmap").string());
  ASSERT_EQ(doc["release_differences"].size(), 1U);
  EXPECT_EQ(doc["release_differences"][0]["seed"], 2);
  EXPECT_EQ(doc["release_differences"][0]["outcomes"]["6.19"], "agree");
  const auto text = format_fuzz_report(doc);
  EXPECT_NE(text.find("Linux 6.18: 3 scenarios"), std::string::npos) << text;
  EXPECT_NE(text.find("plain seed 2 (kernel): differ — page: zero/frame"), std::string::npos) << text;
  EXPECT_NE(text.find("scenarios whose outcome differs between kernel releases: 1"), std::string::npos) << text;
}

}  // namespace
}  // namespace rmapkit::lab
