// The design lab's documents (docs/json.md). compare's fields are those `compare --json`
// printed before the format was versioned, so that scripts/design_lab.py reads either.
#include "rmapkit/lab/json.h"

#include <string>

namespace rmapkit::lab {

namespace sc = rmapkit::scenario;

namespace {

nlohmann::json design_json(const design_run& r) {
  nlohmann::json d;
  d["design"] = r.design;
  d["exit_code"] = r.exit_code;
  d["objects"] = nlohmann::json::array();
  for (const auto& o : r.objects)
    d["objects"].push_back(
        {{"type", o.type}, {"bytes", o.bytes}, {"allocated", o.allocated}, {"freed", o.freed}, {"peak", o.peak}});
  d["per_frame_bytes"] = r.per_frame_bytes;
  d["peak"] = {{"bytes", r.peak_bytes}, {"anon_frames", r.peak_frames}, {"anon_mappings", r.peak_mappings}};
  d["walks"] = {{"walks", r.walks.walks},
                {"entries", r.walks.entries},
                {"vmas_visited", r.walks.vmas_visited},
                {"ptes_examined", r.walks.ptes_examined},
                {"misses", r.walks.misses},
                {"upkeep", r.walks.upkeep}};
  d["locks"] = nlohmann::json::object();
  for (std::size_t c = 0; c < r.locks.size(); ++c) {
    const auto& l = r.locks[c];
    if (l.acquisitions == 0) continue;
    d["locks"][mm::to_string(static_cast<mm::rmap_lock_class>(c))] = {{"acquisitions", l.acquisitions},
                                                                      {"work", l.work},
                                                                      {"longest", l.longest},
                                                                      {"hottest_work", l.hottest_work},
                                                                      {"hottest_acquisitions", l.hottest_acquisitions}};
  }
  d["statements"] = nlohmann::json::object();
  for (const auto& [k, c] : r.kinds)
    d["statements"][k] = {{"count", c.count},
                          {"ns", c.time.count()},
                          {"allocated", c.allocated},
                          {"entries", c.entries},
                          {"upkeep", c.upkeep}};
  d["total_ns"] = r.total.count();
  d["total_ns_runs"] = nlohmann::json::array();
  for (auto t : r.totals) d["total_ns_runs"].push_back(t.count());
  return d;
}

/// One back end's samples of one kind (or of the total): every run, median and spread.
nlohmann::json samples_json(const std::vector<std::chrono::nanoseconds>& runs) {
  auto all = nlohmann::json::array();
  for (auto t : runs) all.push_back(t.count());
  nlohmann::json j{{"runs_ns", all}};
  if (runs.empty()) return j;  // a run that failed before this kind
  const auto s = summarize(runs);
  j["median_ns"] = s.median.count();
  j["min_ns"] = s.min.count();
  j["max_ns"] = s.max.count();
  return j;
}

nlohmann::json outcome_json(const sc::program& prog, const back_end_outcome& o) {
  return {
      {"exit_code", o.exit_code}, {"report", o.report}, {"errors", sc::to_json(sc::parse_diags(o.errors, prog.file))}};
}

}  // namespace

nlohmann::json compare_document(const sc::program& prog, const compare_result& res) {
  auto j = sc::envelope("compare");
  j["scenario"] = prog.file;
  j["statements"] = prog.ops.size();
  j["designs"] = nlohmann::json::array();
  for (const auto& r : res.designs) j["designs"].push_back(design_json(r));
  j["designs_agree"] = res.designs_agree;
  if (res.kernel) j["kernel"] = sc::to_json(*res.kernel);
  if (auto agrees = res.kernel_agrees()) j["kernel_agrees"] = *agrees;
  // The lines `rmapkit compare` writes to standard error.
  std::string errors = res.errors;
  if (res.kernel_unavailable) errors = "rmapkit compare --vs-kernel: " + *res.kernel_unavailable + '\n';
  j["errors"] = sc::to_json(sc::parse_diags(errors, prog.file));
  return j;
}

nlohmann::json bench_document(const sc::program& prog, const bench_options& opts, const bench_result& res) {
  auto j = sc::envelope("bench");
  j["scenario"] = prog.file;
  j["statements"] = prog.ops.size();
  j["repeat"] = opts.repeat;
  j["design"] = opts.design;
  j["vs_kernel"] = opts.vs_kernel;
  if (opts.kernel_only) j["kernel_only"] = true;
  if (opts.kernel_share) j["kernel_share"] = true;
  j["kinds"] = nlohmann::json::array();
  for (const auto& k : res.kinds) {
    // A kind appears once a back end ran it: the model, or with kernel_only the kernel.
    const auto& first = opts.kernel_only && res.kernel ? *res.kernel : res.model;
    auto m = first.kinds.find(k);
    if (m == first.kinds.end()) continue;  // not reached: the run failed before it
    nlohmann::json row{{"kind", k}, {"count", m->second.count}};
    if (!opts.kernel_only) row["model"] = samples_json(m->second.runs);
    if (res.kernel)
      if (auto kk = res.kernel->kinds.find(k); kk != res.kernel->kinds.end())
        row["kernel"] = samples_json(kk->second.runs);
    if (res.kernel_share)
      if (auto ks = res.kernel_share->kinds.find(k); ks != res.kernel_share->kinds.end())
        row["kernel_share"] = samples_json(ks->second.runs);
    j["kinds"].push_back(std::move(row));
  }
  j["total"] = {{"count", prog.ops.size()}};
  if (!opts.kernel_only) j["total"]["model"] = samples_json(res.model.total);
  if (res.kernel) j["total"]["kernel"] = samples_json(res.kernel->total);
  // The sum over the kinds the tracepoints time, not over all.
  if (res.kernel_share) j["total"]["kernel_share"] = samples_json(res.kernel_share->total);
  std::string errors = res.errors;
  if (res.kernel_unavailable)
    errors = fmt::format("rmapkit bench: {} runs the scenario on the live kernel: {}\n",
                         opts.kernel_only ? "--kernel-only" : "--vs-kernel", *res.kernel_unavailable);
  j["errors"] = sc::to_json(sc::parse_diags(errors, prog.file));
  return j;
}

nlohmann::json diff_document(const sc::program& prog, const diff_result& res) {
  auto j = sc::envelope("diff");
  j["scenario"] = prog.file;
  j["agree"] = res.agree;
  j["model"] = outcome_json(prog, res.model);
  j["kernel"] = outcome_json(prog, res.kernel);
  if (!res.agree && !res.signal) j["unified"] = res.unified;
  // What `rmapkit diff` writes to standard error: the kernel's errors when a signal
  // interrupted it, or when both back ends refused the scenario the same way.
  const bool kernel_errors = res.signal || (res.agree && res.kernel.exit_code != 0);
  j["errors"] = sc::to_json(sc::parse_diags(kernel_errors ? res.kernel.errors : std::string(), prog.file));
  return j;
}

}  // namespace rmapkit::lab
