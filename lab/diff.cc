// Differential check of one scenario on the model and on the kernel.
#include "rmapkit/lab/diff.h"

#include <sstream>
#include <vector>

#include <dtl/dtl.hpp>

#include "rmapkit/scenario/report.h"

namespace rmapkit::lab {

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

/// The unified diff hunks from @from to @to.
std::string unified_hunks(const std::string& from, const std::string& to) {
  auto a = lines_of(from), b = lines_of(to);
  dtl::Diff<std::string> d(a, b);
  d.onHuge();
  d.compose();
  d.composeUnifiedHunks();
  std::ostringstream out;
  d.printUnifiedFormat(out);
  return out.str();
}

}  // namespace

// With ksm_counters set, each back end writes its counters into its report where the
// `ksm` ran, so that they are compared too.
back_end_outcome run_model(const scenario::program& prog, model::run_options opts) {
  std::ostringstream out, err;
  if (opts.ksm_counters) opts.on_ksm_counters = [&out](int line, const auto& k) { out << scenario::format(line, k); };
  back_end_outcome o;
  const auto t0 = std::chrono::steady_clock::now();
  o.exit_code = model::run(prog, out, err, opts);
  o.time = std::chrono::steady_clock::now() - t0;
  o.report = out.str();
  o.errors = err.str();
  return o;
}

std::string unified_diff(const std::string& from_name, const std::string& from_text, const std::string& to_name,
                         const std::string& to_text) {
  if (from_text == to_text) return {};
  return "--- " + from_name + "\n+++ " + to_name + '\n' + unified_hunks(from_text, to_text);
}

std::string back_end_outcome::text() const { return exit_code == 0 ? report : report + "error: " + errors; }

int diff_result::exit_code() const {
  if (signal || agree) return kernel.exit_code;
  return 1;
}

diff_result diff(const scenario::program& prog, const model::run_options& mopts, const kcheck::run_options& kopts) {
  diff_result res;
  const bool counters = mopts.ksm_counters || kopts.ksm_counters;
  model::run_options m = mopts;
  m.ksm_counters = counters;
  res.model = run_model(prog, m);
  std::ostringstream kout, kerr;
  kcheck::run_options k_opts = kopts;
  k_opts.ksm_counters = counters;
  if (counters) k_opts.on_ksm_counters = [&kout](int line, const auto& c) { kout << scenario::format(line, c); };
  const auto t0 = std::chrono::steady_clock::now();
  auto k = kcheck::run(prog, kout, kerr, k_opts);
  res.kernel = {k.exit_code, kout.str(), kerr.str(), std::chrono::steady_clock::now() - t0};
  res.signal = k.signal;
  if (res.signal) return res;
  const auto model_text = res.model.text(), kernel_text = res.kernel.text();
  res.agree = model_text == kernel_text;
  res.unified = unified_diff("kernel " + prog.file, kernel_text, "model " + prog.file, model_text);
  return res;
}

}  // namespace rmapkit::lab
