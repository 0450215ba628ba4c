// rmapkit fuzz, fuzz report and fuzz profiles.
#include "fuzz.h"

#include <algorithm>
#include <charconv>
#include <iostream>
#include <map>
#include <regex>
#include <stdexcept>

#include <fmt/format.h>

#include "rmapkit/mm/anon_rmap.h"
#include "rmapkit/scenario/profile.h"

namespace rmapkit::tool {

namespace {

std::optional<std::uint64_t> number(const std::string& s) {
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

/// Fills @a.opts.seeds from --seeds, --count and --shard; the reason when they are wrong.
std::optional<std::string> read_seeds(fuzz_args& a) {
  auto& s = a.opts.seeds;
  if (!a.seeds.empty()) {
    static const std::regex range(R"((\d+)\.\.(\d+))");
    std::smatch m;
    if (!std::regex_match(a.seeds, m, range) || !number(m[1]) || !number(m[2]))
      return fmt::format("--seeds {}: not a range A..B of seeds", a.seeds);
    s.first = *number(m[1]);
    s.last = *number(m[2]);
    if (s.first > s.last) return fmt::format("--seeds {}: the first seed is after the last", a.seeds);
  } else {
    auto n = a.count.value_or(100);
    if (n == 0) return "--count 0: a campaign has at least one seed";
    s.first = 0;
    s.last = n - 1;
  }
  const auto slash = a.shard.find('/');
  std::optional<std::uint64_t> index, count;
  if (slash != std::string::npos) {
    index = number(a.shard.substr(0, slash));
    count = number(a.shard.substr(slash + 1));
  }
  if (!index || !count || *count == 0 || *index >= *count || *count > 1000000)
    return fmt::format("--shard {}: not I/N with 0 <= I < N (shard I of N)", a.shard);
  s.shard_index = static_cast<unsigned>(*index);
  s.shard_count = static_cast<unsigned>(*count);
  return std::nullopt;
}

/// Fills the profiles, the mode, the design and the planted fault; the reason when wrong.
std::optional<std::string> read_campaign(fuzz_args& a) {
  for (const auto& name : a.profiles) {
    auto p = scenario::find_profile(name);
    if (!p) return "--profile: " + p.error();
    if (a.smaps && !p->options.smaps) {
      // Its own name: a folder's records of NAME and of NAME+smaps are different scenarios.
      p->options.smaps = true;
      p->name += "+smaps";
    }
    a.opts.profiles.push_back(std::move(*p));
  }
  if (a.time_limit) a.opts.time_limit = std::chrono::seconds(*a.time_limit);
  a.opts.mode = a.model_only ? lab::fuzz_mode::model_only : lab::fuzz_mode::kernel;
  a.opts.design = a.design.value_or(a.model_only ? "" : "linux-6");
  if (a.design) {
    try {
      (void)mm::parse_design(*a.design);
    } catch (const std::invalid_argument& e) {
      return fmt::format("--design {}: {}", *a.design, e.what());
    }
  }
  if (a.plant.empty()) a.opts.plant = model::planted_fault::none;
  else if (a.plant == "read-as-write") a.opts.plant = model::planted_fault::read_as_write;
  else return fmt::format("--plant-fault {}: no such fault (read-as-write)", a.plant);
  return std::nullopt;
}

std::string counts(const std::map<lab::fuzz_outcome, std::size_t>& outcomes) {
  std::string s;
  for (const auto& [o, n] : outcomes) s += fmt::format("{}{} {}", s.empty() ? "" : ", ", n, lab::to_string(o));
  return s.empty() ? "none" : s;
}

}  // namespace

int cmd_fuzz(fuzz_args& a, std::ostream& out, std::ostream& err, int& signal) {
  if (auto why = read_seeds(a)) {
    err << "rmapkit fuzz: " << *why << '\n';
    return 2;
  }
  if (auto why = read_campaign(a)) {
    err << "rmapkit fuzz: " << *why << '\n';
    return 2;
  }
  const auto planned = lab::seeds_of(a.opts.seeds).size() * a.opts.profiles.size();
  std::size_t seen = 0;
  a.opts.on_minimizing = [&](const lab::fuzz_record& r) {
    err << fmt::format("rmapkit fuzz: {} seed {}: {} ({}); minimising\n", r.profile, r.seed, lab::to_string(r.outcome),
                       r.signature)
        << std::flush;
  };
  a.opts.on_record = [&](const lab::fuzz_record& r) {
    ++seen;
    if (r.outcome != lab::fuzz_outcome::agree)
      err << fmt::format("rmapkit fuzz: {} seed {}: case {}/{}.rmap, {} statements{}\n", r.profile, r.seed,
                         a.opts.out_dir, r.case_name, r.case_statements,
                         r.case_reproduced ? "" : " (it did not fail again when rerun: flaky)");
    else if (!a.quiet && seen % 500 == 0)
      err << fmt::format("rmapkit fuzz: {} of {} run\n", seen, planned) << std::flush;
  };
  lab::fuzz_summary s;
  try {
    s = lab::fuzz(a.opts);
  } catch (const std::runtime_error& e) {  // no kernel back end here, an output folder not writable
    err << "rmapkit fuzz: " << e.what() << '\n';
    return 2;
  }
  signal = s.signal;
  const auto& seeds = a.opts.seeds;
  out << fmt::format("rmapkit fuzz: seeds {}..{}, shard {}/{}, {} profile(s), {} mode: {} scenarios", seeds.first,
                     seeds.last, seeds.shard_index, seeds.shard_count, a.opts.profiles.size(),
                     a.model_only ? "model-only" : "kernel", s.planned);
  out << fmt::format(", {} run ({}) in {:.1f} s", s.run, counts(s.outcomes),
                     static_cast<double>(s.wall.count()) / 1000);
  if (s.resumed) out << fmt::format(", {} done by an earlier run", s.resumed);
  if (s.out_of_time) out << fmt::format(", {} left when the time limit was reached", s.planned - s.run - s.resumed);
  if (s.signal) out << ", interrupted";
  if (s.busy) out << ", stopped: another run holds the machine lock (--no-wait); run again to go on";
  out << "; records in " << s.results_file << '\n';
  if (s.busy) return kcheck::EXIT_MACHINE_BUSY;
  return s.clean() ? 0 : 1;
}

int cmd_fuzz_report(const std::vector<std::string>& dirs, bool json, std::ostream& out, std::ostream& err) {
  std::vector<std::string> errors;
  auto doc = lab::fuzz_report(dirs, errors);
  for (const auto& e : errors) err << "rmapkit fuzz report: " << e << '\n';
  if (json) {
    doc["errors"] = errors;
    out << doc.dump(2) << '\n';
  } else {
    out << lab::format_fuzz_report(doc);
  }
  if (!errors.empty()) return 2;
  for (const auto& rel : doc["releases"])
    if (rel["outcomes"]["agree"] != rel["scenarios"]) return 1;
  return 0;
}

int cmd_fuzz_profiles(const std::optional<std::string>& name, std::ostream& out, std::ostream& err) {
  if (name) {
    auto text = scenario::builtin_profile_text(*name);
    if (!text) {
      err << "rmapkit fuzz profiles: no built-in profile named " << *name << '\n';
      return 2;
    }
    out << *text;
    return 0;
  }
  for (const auto& n : scenario::builtin_profile_names()) {
    auto p = scenario::find_profile(n);
    out << fmt::format("{:<16} {}\n", n, p ? p->description : p.error());
  }
  return 0;
}

}  // namespace rmapkit::tool
