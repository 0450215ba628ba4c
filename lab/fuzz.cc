// Differential campaigns: generate, lint, run on both sides, compare, minimise, record.
#include "rmapkit/lab/fuzz.h"

#include <sys/utsname.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <tuple>

#include <fmt/format.h>

#include "rmapkit/lab/diff.h"
#include "rmapkit/mm/anon_rmap.h"
#include "rmapkit/scenario/generate.h"
#include "rmapkit/scenario/parser.h"
#include "rmapkit/scenario/program.h"
#include "rmapkit/version.h"

namespace rmapkit::lab {

namespace sc = rmapkit::scenario;
namespace fs = std::filesystem;

namespace {

constexpr std::pair<fuzz_outcome, std::string_view> OUTCOME_NAMES[] = {
    {fuzz_outcome::agree, "agree"},
    {fuzz_outcome::differ, "differ"},
    {fuzz_outcome::designs_differ, "designs-differ"},
    {fuzz_outcome::model_bug, "model-bug"},
    {fuzz_outcome::invalid, "invalid"},
};

std::string host_kernel_release() {
  struct utsname u {};
  return ::uname(&u) == 0 ? u.release : "unknown";
}

double ms(std::chrono::nanoseconds d) { return std::chrono::duration<double, std::milli>(d).count(); }

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

/// @s with every number as N: the same failure on another line, page or frame of a smaller
/// scenario has the same words.
std::string numbers_as_n(const std::string& s) {
  static const std::regex digits(R"(\d+)");
  return std::regex_replace(s, digits, "N");
}

/// @s with its `FILE:LINE: ` prefix gone and every number as N.
std::string normalized(const std::string& s) {
  static const std::regex where(R"(^(error: )?[^: ]*:\d+: )");
  return numbers_as_n(std::regex_replace(s, where, "$1"));
}

/// Everything that decides whether a failure is the same one, and the texts that show it.
struct evaluation {
  fuzz_outcome outcome = fuzz_outcome::agree;
  std::string signature, detail;
  bool machine_wide = false;
  unsigned statements = 0;  ///< of the scenario, when it parses
  std::chrono::nanoseconds model_time{0}, kernel_time{0};
  std::vector<std::pair<std::string, std::string>> texts;  ///< (side, its text): case files
  std::string unified;
  int signal = 0;
  bool busy = false;  ///< --no-wait, and another run held the machine lock: nothing compared

  /// The campaign must stop here: a signal, or a machine it may not wait for.
  bool stops() const { return signal || busy; }
  bool same_failure(const evaluation& o) const { return outcome == o.outcome && signature == o.signature; }
};

/// Runs scenarios the way @opts says: model against kernel, or the designs against each other.
class evaluator {
 public:
  explicit evaluator(const fuzz_options& o) : _o(o) {}

  evaluation operator()(const std::string& text, const std::string& name) const {
    auto parsed = sc::parse(text, name);
    auto prog = parsed ? sc::resolve(*parsed) : tl::make_unexpected(parsed.error());
    evaluation e;
    if (!prog) {
      e.outcome = fuzz_outcome::invalid;
      e.detail = prog.error().str();
      e.signature = "invalid: " + normalized(e.detail);
    } else {
      e = _o.mode == fuzz_mode::kernel ? on_kernel(*prog) : on_designs(*prog);
      e.machine_wide = prog->needs_machine_lock;
    }
    if (parsed) e.statements = static_cast<unsigned>(parsed->statements.size());
    return e;
  }

  /// What the record says the design was.
  std::string design_label() const { return _o.design.empty() ? "all" : _o.design; }

 private:
  model::run_options model_options(const std::string& design) const {
    model::run_options m;
    m.check_invariants = true;  // the VM_BUG_ON counterparts: a campaign is where they pay
    m.ksm_counters = true;      // after each `ksm`, its six counters are compared as well
    m.design = design;
    m.plant = _o.plant;
    return m;
  }

  static void model_bug(evaluation& e, const std::string& errors) {
    e.outcome = fuzz_outcome::model_bug;
    e.detail = first_line(errors);
    e.signature = "model-bug: " + normalized(e.detail);
  }

  evaluation on_kernel(const sc::program& prog) const {
    evaluation e;
    auto d = diff(prog, model_options(_o.design), _o.kernel);
    e.signal = d.signal;
    e.busy = d.kernel.exit_code == kcheck::EXIT_MACHINE_BUSY;
    e.model_time = d.model.time;
    e.kernel_time = d.kernel.time;
    e.texts = {{"kernel", d.kernel.text()}, {"model", d.model.text()}};
    e.unified = d.unified;
    if (d.model.exit_code == model::EXIT_MODEL_BUG) {
      model_bug(e, d.model.errors);
    } else if (!d.agree && !e.stops()) {
      e.outcome = fuzz_outcome::differ;
      e.signature = diff_signature(d.unified);
      e.detail = e.signature;
    }
    return e;
  }

  evaluation on_designs(const sc::program& prog) const {
    evaluation e;
    std::vector<std::string> designs;
    if (_o.design.empty()) designs = mm::rmap_design_combinations();
    else designs.push_back(_o.design);
    for (const auto& design : designs) {
      auto out = run_model(prog, model_options(design));
      e.model_time += out.time;
      e.texts.emplace_back(design, out.text());
      if (out.exit_code == model::EXIT_MODEL_BUG) {
        model_bug(e, out.errors);
        e.detail = design + ": " + e.detail;
        return e;
      }
      const auto& [first, first_text] = e.texts.front();
      if (out.text() != first_text && e.outcome == fuzz_outcome::agree) {
        e.outcome = fuzz_outcome::designs_differ;
        e.unified = unified_diff(first + ' ' + prog.file, first_text, design + ' ' + prog.file, out.text());
        e.signature = design + ": " + diff_signature(e.unified);
        e.detail = e.signature;
      }
    }
    return e;
  }

  const fuzz_options& _o;
};

/// The results file of @s's shard.
std::string results_name(const fuzz_seeds& s) {
  return s.shard_count == 1 ? "results.jsonl"
                            : fmt::format("results-shard-{}-of-{}.jsonl", s.shard_index, s.shard_count);
}

using record_key = std::tuple<std::string, std::uint64_t, std::string, std::string, std::string>;

record_key key_of(const fuzz_record& r) { return {r.profile, r.seed, r.mode, r.design, r.kernel_release}; }

/// The scenarios @path already has records for (an earlier run of the same shard).
std::set<record_key> recorded(const std::string& path) {
  std::set<record_key> done;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) continue;  // a line cut short by a crash: run that one again
    try {
      done.insert(key_of(record_from_json(j)));
    } catch (const nlohmann::json::exception&) {
    }
  }
  return done;
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out.flush()) throw std::runtime_error(fmt::format("{}: cannot write", path.string()));
}

/// A signal interrupted a kernel run while a case was minimised, or the machine lock was
/// busy: the campaign stops.
struct interrupted {
  int signal;
  bool busy;
};

/// Runs @text, throwing interrupted when its kernel run could not go on.
evaluation run_or_stop(const evaluator& run, const std::string& text, const std::string& name) {
  auto e = run(text, name);
  if (e.stops()) throw interrupted{e.signal, e.busy};
  return e;
}

/// Minimises the failure @failed of @text, made by @profile, and writes the case's files;
/// fills @r's case fields.
void minimize_case(const fuzz_options& o, const sc::generator_profile& profile, const evaluator& run,
                   const std::string& text, const evaluation& failed, fuzz_record& r) {
  r.case_name = fmt::format("{}-{}{}", r.profile, r.seed, o.mode == fuzz_mode::model_only ? "-designs" : "");
  const fs::path dir(o.out_dir);
  const auto file = r.case_name + ".rmap";
  write_file(dir / (r.case_name + ".orig.rmap"), text);
  auto t0 = std::chrono::steady_clock::now();
  std::string small = text;
  if (o.minimize) {
    auto m = minimize(
        text, [&](const std::string& candidate) { return run_or_stop(run, candidate, file).same_failure(failed); },
        o.minimizing);
    small = m.text;
    r.case_statements = m.statements;
    r.case_exhausted = m.exhausted;
  }
  auto again = run_or_stop(run, small, file);  // once more: the texts of the case, and whether it is stable
  r.minimize_ms = ms(std::chrono::steady_clock::now() - t0);
  r.case_reproduced = again.same_failure(failed);
  if (!o.minimize) r.case_statements = r.statements;
  const auto size = o.minimize ? fmt::format("minimised from {} statements to {}{}", r.statements, r.case_statements,
                                             r.case_exhausted ? " (stopped at its budget)" : "")
                               : std::string("not minimised (--no-minimize)");
  auto header = fmt::format(
      "# rmapkit fuzz case: profile {}, seed {}: {} ({})\n"
      "# {}; found on Linux {} by rmapkit {}, {} mode, design {}\n"
      "# the original: rmapkit gen random --profile {} --seed {}{} (also in {}.orig.rmap)\n",
      r.profile, r.seed, to_string(failed.outcome), failed.signature, size, r.kernel_release, r.version, r.mode,
      r.design, profile.options.profile, r.seed, profile.options.smaps ? " --smaps" : "", r.case_name);
  write_file(dir / file, header + small);
  write_file(dir / (r.case_name + ".diff"), again.unified);
  for (const auto& [side, side_text] : again.texts) write_file(dir / (r.case_name + '.' + side), side_text);
}

}  // namespace

std::string_view to_string(fuzz_outcome o) {
  for (const auto& [v, name] : OUTCOME_NAMES)
    if (v == o) return name;
  return "?";
}

std::optional<fuzz_outcome> fuzz_outcome_of(std::string_view name) {
  for (const auto& [v, n] : OUTCOME_NAMES)
    if (n == name) return v;
  return std::nullopt;
}

std::vector<std::uint64_t> seeds_of(const fuzz_seeds& s) {
  std::vector<std::uint64_t> out;
  if (s.shard_count == 0 || s.shard_index >= s.shard_count || s.first > s.last) return out;
  for (auto seed = s.first + s.shard_index; seed <= s.last && seed >= s.first; seed += s.shard_count)
    out.push_back(seed);
  return out;
}

bool fuzz_summary::clean() const {
  for (const auto& [o, n] : outcomes)
    if (o != fuzz_outcome::agree && n) return false;
  return signal == 0 && !busy;
}

std::string diff_signature(const std::string& unified) {
  std::string removed, added;
  bool have_removed = false, have_added = false;
  std::istringstream in(unified);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("---") || line.starts_with("+++")) continue;
    if (!have_removed && line.starts_with('-')) removed = line.substr(1), have_removed = true;
    if (!have_added && line.starts_with('+')) added = line.substr(1), have_added = true;
  }
  for (const auto* l : {&removed, &added})
    if (l->starts_with("error:")) return normalized(*l);
  auto words = [](const std::string& l) {
    std::vector<std::string> w;
    std::istringstream s(l);
    for (std::string t; s >> t;) w.push_back(t);
    return w;
  };
  auto a = words(removed), b = words(added);
  // A smaps figure ("Referenced:  4 kB"): the field's name is all there is to say.
  auto smaps_field = [](const std::vector<std::string>& w) {
    return w.size() == 3 && w[0].ends_with(':') && w[2] == "kB" ? w[0].substr(0, w[0].size() - 1) : std::string();
  };
  if (auto f = smaps_field(a); !f.empty() && f == smaps_field(b)) return "smaps: " + f;
  if (!have_removed) return fmt::format("{}: extra in the model", b.empty() ? "?" : b[0]);
  if (!have_added) return fmt::format("{}: missing in the model", a.empty() ? "?" : a[0]);
  // The field: a key=value's key, a flag's name; numbers are not part of it.
  auto field = [](const std::vector<std::string>& w, std::size_t i) {
    if (i >= w.size()) return std::string("-");
    return numbers_as_n(w[i].substr(0, w[i].find('=')));
  };
  std::size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  return fmt::format("{}: {}/{}", a.empty() ? "?" : a[0], field(a, i), field(b, i));
}

nlohmann::json to_json(const fuzz_record& r) {
  nlohmann::json j = {
      {"seed", r.seed},
      {"profile", r.profile},
      {"outcome", to_string(r.outcome)},
      {"mode", r.mode},
      {"design", r.design},
      {"statements", r.statements},
      {"machine_wide", r.machine_wide},
      {"times_ms",
       {{"generate", r.generate_ms}, {"model", r.model_ms}, {"kernel", r.kernel_ms}, {"minimize", r.minimize_ms}}},
      {"kernel_release", r.kernel_release},
      {"rmapkit_version", r.version},
  };
  if (r.outcome != fuzz_outcome::agree) {
    j["signature"] = r.signature;
    j["detail"] = r.detail;
  }
  if (!r.case_name.empty())
    j["case"] = {{"name", r.case_name},
                 {"statements", r.case_statements},
                 {"exhausted", r.case_exhausted},
                 {"reproduced", r.case_reproduced}};
  return j;
}

fuzz_record record_from_json(const nlohmann::json& j) {
  fuzz_record r;
  r.seed = j.at("seed").get<std::uint64_t>();
  r.profile = j.at("profile").get<std::string>();
  auto outcome = fuzz_outcome_of(j.at("outcome").get<std::string>());
  if (!outcome) throw nlohmann::json::other_error::create(501, "unknown outcome " + j.at("outcome").dump(), &j);
  r.outcome = *outcome;
  r.mode = j.at("mode").get<std::string>();
  r.design = j.at("design").get<std::string>();
  r.statements = j.at("statements").get<unsigned>();
  r.machine_wide = j.at("machine_wide").get<bool>();
  const auto& t = j.at("times_ms");
  r.generate_ms = t.at("generate").get<double>();
  r.model_ms = t.at("model").get<double>();
  r.kernel_ms = t.at("kernel").get<double>();
  r.minimize_ms = t.at("minimize").get<double>();
  r.kernel_release = j.at("kernel_release").get<std::string>();
  r.version = j.at("rmapkit_version").get<std::string>();
  r.signature = j.value("signature", "");
  r.detail = j.value("detail", "");
  if (j.contains("case")) {
    const auto& c = j.at("case");
    r.case_name = c.at("name").get<std::string>();
    r.case_statements = c.at("statements").get<std::size_t>();
    r.case_exhausted = c.at("exhausted").get<bool>();
    r.case_reproduced = c.at("reproduced").get<bool>();
  }
  return r;
}

fuzz_summary fuzz(const fuzz_options& o) {
  if (o.mode == fuzz_mode::kernel)
    if (auto why = kcheck::missing_privileges())
      throw std::runtime_error("the kernel back end cannot run here: " + *why + " (--model-only needs no kernel)");
  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  if (ec) throw std::runtime_error(fmt::format("{}: cannot make the output folder: {}", o.out_dir, ec.message()));
  fuzz_summary s;
  s.results_file = (fs::path(o.out_dir) / results_name(o.seeds)).string();
  const auto done = recorded(s.results_file);
  std::ofstream results(s.results_file, std::ios::app);
  if (!results) throw std::runtime_error(fmt::format("{}: cannot write", s.results_file));
  const evaluator run(o);
  const auto release = host_kernel_release();
  const auto start = std::chrono::steady_clock::now();
  for (auto seed : seeds_of(o.seeds)) {
    for (const auto& profile : o.profiles) {
      ++s.planned;
      fuzz_record r;
      r.seed = seed;
      r.profile = profile.name;
      r.mode = o.mode == fuzz_mode::kernel ? "kernel" : "model-only";
      r.design = run.design_label();
      r.kernel_release = release;
      r.version = RMAPKIT_VERSION;
      if (done.contains(key_of(r))) {
        ++s.resumed;
        continue;
      }
      const bool stopped = s.signal || s.busy;
      if (stopped || (o.time_limit && std::chrono::steady_clock::now() - start > *o.time_limit)) {
        s.out_of_time = !stopped;
        continue;  // counted in planned: what a rerun would do
      }
      auto opts = profile.options;
      opts.seed = seed;
      auto t0 = std::chrono::steady_clock::now();
      const auto text = sc::generate_random(opts);
      r.generate_ms = ms(std::chrono::steady_clock::now() - t0);
      const auto name = fmt::format("{}-{}.rmap", profile.name, seed);
      auto e = run(text, name);
      if (e.stops()) {  // not recorded: the rerun runs it
        s.signal = e.signal;
        s.busy = e.busy;
        continue;
      }
      r.outcome = e.outcome;
      r.signature = e.signature;
      r.detail = e.detail;
      r.machine_wide = e.machine_wide;
      r.model_ms = ms(e.model_time);
      r.kernel_ms = ms(e.kernel_time);
      r.statements = e.statements;
      if (e.outcome != fuzz_outcome::agree) {
        if (o.on_minimizing) o.on_minimizing(r);
        try {
          minimize_case(o, profile, run, text, e, r);
        } catch (const interrupted& i) {  // not recorded: the rerun runs it
          s.signal = i.signal;
          s.busy = i.busy;
          continue;
        }
      }
      results << to_json(r).dump() << '\n' << std::flush;
      if (!results) throw std::runtime_error(fmt::format("{}: cannot write", s.results_file));
      ++s.run;
      ++s.outcomes[r.outcome];
      if (o.on_record) o.on_record(r);
    }
  }
  s.wall = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  return s;
}

}  // namespace rmapkit::lab
