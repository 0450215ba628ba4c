// `rmapkit run --json` (docs/json.md): run_on() with the reports taken as data
// (run_options::on_check) and the counters read from the machine itself.
#include "rmapkit/model/json.h"

#include <optional>
#include <sstream>
#include <string>
#include <variant>

#include <fmt/format.h>

namespace rmapkit::model {

namespace sc = rmapkit::scenario;

namespace {

nlohmann::json ksm_json(const mm::machine::ksm_stats& k) {
  return {{"pages_shared", k.pages_shared},
          {"pages_sharing", k.pages_sharing},
          {"pages_unshared", k.pages_unshared},
          {"pages_volatile", k.pages_volatile},
          {"stable_node_chains", k.stable_node_chains},
          {"stable_node_dups", k.stable_node_dups},
          {"full_scans", k.full_scans}};
}

/// What `--stats` prints: vmstat's event counters and the KSM counters.
nlohmann::json stats_json(const mm::machine& m) {
  nlohmann::json vmstat = nlohmann::json::object();
  for (const auto& [name, n] : m.vmstat()) vmstat[name] = n;
  return {{"vmstat", vmstat}, {"ksm", ksm_json(m.ksm_counters())}};
}

}  // namespace

sc::json_outcome run_json(const sc::program& prog, const run_options& opts) {
  sc::json_outcome res{sc::envelope("run")};
  auto& doc = res.document;
  doc["scenario"] = prog.file;
  doc["design"] = opts.design;
  doc["reports"] = nlohmann::json::array();
  if (opts.ksm_counters) doc["ksm"] = nlohmann::json::array();

  mm::machine m(opts.design);
  run_options o = opts;
  o.stats = false;  // read from the machine below
  o.ksm_counters = false;
  o.on_check = [&](const sc::report_block& b) { doc["reports"].push_back(sc::to_json(b)); };
  o.on_statement = [&](const sc::op& op, std::chrono::nanoseconds t) {
    if (opts.on_statement) opts.on_statement(op, t);
    if (opts.ksm_counters && std::holds_alternative<sc::op_ksm>(op.body)) {
      auto k = m.ksm_counters();
      doc["ksm"].push_back(
          sc::to_json(op.line, sc::ksm_counters{k.pages_shared, k.pages_sharing, k.pages_unshared, k.pages_volatile,
                                                k.stable_node_chains, k.stable_node_dups}));
    }
  };
  std::ostringstream out, err;
  res.exit_code = run_on(m, prog, out, err, o);
  auto errors = sc::parse_diags(err.str(), prog.file);
  if (res.exit_code == 0 && opts.stats) doc["stats"] = stats_json(m);
  if (res.exit_code == 0 && opts.check_invariants) {
    if (auto leak = teardown_leak(m)) {
      errors.push_back({prog.file, 0, *leak});
      res.exit_code = EXIT_MODEL_BUG;
    }
  }
  doc["errors"] = sc::to_json(errors);
  return res;
}

}  // namespace rmapkit::model
