// `rmapkit kernel --json` (docs/json.md): run() with the reports and counters taken as
// data through its hooks, and its errors read back as diags.
#include "rmapkit/kcheck/json.h"

#include <sstream>
#include <stdexcept>

namespace rmapkit::kcheck {

namespace sc = rmapkit::scenario;

sc::json_outcome run_json(const sc::program& prog, const run_options& opts) {
  if (opts.trace) throw std::invalid_argument("kcheck::run_json: trace lines would mix with the errors");
  sc::json_outcome res{sc::envelope("kernel")};
  auto& doc = res.document;
  doc["scenario"] = prog.file;
  doc["reports"] = nlohmann::json::array();
  if (opts.ksm_counters) doc["ksm"] = nlohmann::json::array();
  run_options o = opts;
  o.on_check = [&](const sc::report_block& b) { doc["reports"].push_back(sc::to_json(b)); };
  o.on_ksm_counters = [&](int line, const sc::ksm_counters& k) { doc["ksm"].push_back(sc::to_json(line, k)); };
  o.on_kmem_counts = [&](const sc::kmem_counts& k) { doc["kmem"] = sc::to_json(k); };
  std::ostringstream out, err;
  const auto r = run(prog, out, err, o);
  res.exit_code = r.exit_code;
  res.signal = r.signal;
  doc["errors"] = sc::to_json(sc::parse_diags(err.str(), prog.file));
  return res;
}

}  // namespace rmapkit::kcheck
