// `rmapkit fuzz report`: the shards' records merged, per kernel release.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <tuple>

#include <fmt/format.h>

#include "rmapkit/lab/fuzz.h"

namespace rmapkit::lab {

namespace fs = std::filesystem;

namespace {

/// A record and the folder it was found in (where its case files are).
struct found {
  fuzz_record record;
  std::string dir;
};

/// One scenario of a campaign on one kernel release: the last record of it wins.
using scenario_key = std::tuple<std::string, std::string, std::string, std::string, std::uint64_t>;

/// Reads every *.jsonl file of @dir, in name order, into @into.
void read_dir(const std::string& dir, std::map<scenario_key, found>& into, std::size_t& files,
              std::vector<std::string>& errors) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    errors.push_back(fmt::format("{}: not a folder of fuzz results", dir));
    return;
  }
  std::vector<fs::path> paths;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.path().extension() == ".jsonl") paths.push_back(entry.path());
  std::sort(paths.begin(), paths.end());
  for (const auto& path : paths) {
    ++files;
    std::ifstream in(path);
    int line_no = 0;
    for (std::string line; std::getline(in, line);) {
      ++line_no;
      if (line.empty()) continue;
      try {
        auto r = record_from_json(nlohmann::json::parse(line));
        scenario_key key{r.kernel_release, r.mode, r.design, r.profile, r.seed};
        into[key] = {std::move(r), dir};
      } catch (const nlohmann::json::exception& e) {
        errors.push_back(fmt::format("{}:{}: not a fuzz record: {}", path.string(), line_no, e.what()));
      }
    }
  }
}

nlohmann::json zero_outcomes() {
  nlohmann::json j = nlohmann::json::object();
  for (auto o : FUZZ_OUTCOMES) j[std::string(to_string(o))] = 0;
  return j;
}

}  // namespace

nlohmann::json fuzz_report(const std::vector<std::string>& dirs, std::vector<std::string>& errors) {
  std::map<scenario_key, found> records;
  std::size_t files = 0;
  for (const auto& d : dirs) read_dir(d, records, files, errors);
  // release -> (profile, mode, design) -> counts; and each scenario's outcome per release.
  std::map<std::string, nlohmann::json> releases;
  std::map<std::tuple<std::string, std::string, std::string, std::uint64_t>, std::map<std::string, std::string>> across;
  for (const auto& [key, f] : records) {
    const auto& r = f.record;
    auto& rel = releases[r.kernel_release];
    if (rel.is_null())
      rel = {{"kernel_release", r.kernel_release},
             {"scenarios", 0},
             {"outcomes", zero_outcomes()},
             {"profiles", nlohmann::json::object()},
             {"failures", nlohmann::json::array()}};
    const auto outcome = std::string(to_string(r.outcome));
    rel["scenarios"] = rel["scenarios"].get<std::size_t>() + 1;
    rel["outcomes"][outcome] = rel["outcomes"][outcome].get<std::size_t>() + 1;
    const auto group = fmt::format("{} {} {}", r.profile, r.mode, r.design);
    auto& p = rel["profiles"][group];
    if (p.is_null())
      p = {{"profile", r.profile},        {"mode", r.mode}, {"design", r.design}, {"scenarios", 0},
           {"outcomes", zero_outcomes()}, {"wall_ms", 0.0}};
    p["scenarios"] = p["scenarios"].get<std::size_t>() + 1;
    p["outcomes"][outcome] = p["outcomes"][outcome].get<std::size_t>() + 1;
    p["wall_ms"] = p["wall_ms"].get<double>() + r.generate_ms + r.model_ms + r.kernel_ms + r.minimize_ms;
    if (r.outcome != fuzz_outcome::agree) {
      nlohmann::json fail = {{"profile", r.profile}, {"seed", r.seed},           {"mode", r.mode},
                             {"outcome", outcome},   {"signature", r.signature}, {"statements", r.statements}};
      if (!r.case_name.empty())
        fail["case"] = {{"path", (fs::path(f.dir) / (r.case_name + ".rmap")).string()},
                        {"statements", r.case_statements},
                        {"reproduced", r.case_reproduced}};
      rel["failures"].push_back(std::move(fail));
    }
    across[{r.profile, r.mode, r.design, r.seed}][r.kernel_release] = outcome;
  }
  nlohmann::json doc = {{"files", files},
                        {"records", records.size()},
                        {"releases", nlohmann::json::array()},
                        {"release_differences", nlohmann::json::array()}};
  for (auto& [name, rel] : releases) {
    nlohmann::json profiles = nlohmann::json::array();
    for (auto& [_, p] : rel["profiles"].items()) profiles.push_back(p);
    rel["profiles"] = std::move(profiles);
    doc["releases"].push_back(std::move(rel));
  }
  // A scenario run on several releases whose outcomes are not all the same.
  for (const auto& [key, outcomes] : across) {
    if (outcomes.size() < 2) continue;
    const auto& first = outcomes.begin()->second;
    bool same = std::all_of(outcomes.begin(), outcomes.end(), [&first](const auto& o) { return o.second == first; });
    if (same) continue;
    const auto& [profile, mode, design, seed] = key;
    doc["release_differences"].push_back(
        {{"profile", profile}, {"mode", mode}, {"design", design}, {"seed", seed}, {"outcomes", outcomes}});
  }
  return doc;
}

std::string format_fuzz_report(const nlohmann::json& doc) {
  std::string out = fmt::format("fuzz report: {} scenarios from {} files\n", doc["records"].get<std::size_t>(),
                                doc["files"].get<std::size_t>());
  for (const auto& rel : doc["releases"]) {
    out += fmt::format("\nLinux {}: {} scenarios\n", rel["kernel_release"].get<std::string>(),
                       rel["scenarios"].get<std::size_t>());
    out += fmt::format("  {:<16} {:<10} {:<12} {:>9}", "profile", "mode", "design", "scenarios");
    for (auto o : FUZZ_OUTCOMES) out += fmt::format(" {:>14}", to_string(o));
    out += fmt::format(" {:>10}\n", "wall s");
    auto row = [&](const nlohmann::json& p, const std::string& profile, const std::string& mode,
                   const std::string& design) {
      out += fmt::format("  {:<16} {:<10} {:<12} {:>9}", profile, mode, design, p["scenarios"].get<std::size_t>());
      for (auto o : FUZZ_OUTCOMES)
        out += fmt::format(" {:>14}", p["outcomes"][std::string(to_string(o))].get<std::size_t>());
      out += p.contains("wall_ms") ? fmt::format(" {:>10.1f}\n", p["wall_ms"].get<double>() / 1000) : "\n";
    };
    for (const auto& p : rel["profiles"])
      row(p, p["profile"].get<std::string>(), p["mode"].get<std::string>(), p["design"].get<std::string>());
    row(rel, "all", "", "");
    if (rel["failures"].empty()) continue;
    out += "  failures:\n";
    for (const auto& f : rel["failures"]) {
      out += fmt::format("    {} seed {} ({}): {} — {}", f["profile"].get<std::string>(),
                         f["seed"].get<std::uint64_t>(), f["mode"].get<std::string>(), f["outcome"].get<std::string>(),
                         f["signature"].get<std::string>());
      if (f.contains("case"))
        out += fmt::format("\n      case {} ({} statements{})", f["case"]["path"].get<std::string>(),
                           f["case"]["statements"].get<std::size_t>(),
                           f["case"]["reproduced"].get<bool>() ? "" : ", did not fail again when rerun");
      out += '\n';
    }
  }
  const auto& diffs = doc["release_differences"];
  if (!diffs.empty()) {
    out += fmt::format("\nscenarios whose outcome differs between kernel releases: {}\n", diffs.size());
    for (const auto& d : diffs) {
      out += fmt::format("  {} seed {} ({}):", d["profile"].get<std::string>(), d["seed"].get<std::uint64_t>(),
                         d["mode"].get<std::string>());
      for (const auto& [rel, o] : d["outcomes"].items()) out += fmt::format(" {} {};", rel, o.get<std::string>());
      out += '\n';
    }
  }
  return out;
}

}  // namespace rmapkit::lab
