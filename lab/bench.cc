// The design lab's timing: every run adds one sample per statement kind (the summed time
// of that kind's statements in the run) and one to the total.
#include "rmapkit/lab/bench.h"

#include <algorithm>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

#include "rmapkit/kcheck/kernel.h"
#include "rmapkit/model/model.h"

namespace rmapkit::lab {

namespace {

namespace sc = rmapkit::scenario;
using ns = std::chrono::nanoseconds;

/// Starts the next run of @s: every kind seen so far gets a zero sample to add to.
void begin_run(back_end_samples& s) {
  for (auto& [k, v] : s.kinds) v.runs.push_back(ns{0});
  s.total.push_back(ns{0});
}

/// Charges @t to the current run of @o's kind; the first run also counts the statement.
void add(back_end_samples& s, const sc::op& o, ns t, bool first_run) {
  auto kind = sc::statement_kind(o);
  auto it = s.kinds.find(kind);
  if (it == s.kinds.end()) it = s.kinds.emplace(std::string(kind), kind_samples{}).first;
  if (first_run) ++it->second.count;
  it->second.runs.resize(s.total.size(), ns{0});
  it->second.runs.back() += t;
  s.total.back() += t;
}

/// The kinds in the order the scenario first uses them.
std::vector<std::string> kinds_in_order(const sc::program& prog) {
  std::vector<std::string> out;
  for (const auto& o : prog.ops)
    if (auto k = sc::statement_kind(o); std::find(out.begin(), out.end(), k) == out.end()) out.emplace_back(k);
  return out;
}

/// The model's runs; false (with the result's exit status and errors) on the first error.
/// Statements @opts makes bench() run in all: each run of each back end.
std::size_t statements_in_all(const sc::program& prog, const bench_options& opts) {
  return prog.ops.size() * opts.repeat * (opts.vs_kernel && !opts.kernel_only ? 2 : 1);
}

/// run_options::before_statement for run @run (counted over both back ends).
std::function<void(std::size_t)> progress_of(const sc::program& prog, const bench_options& opts, std::size_t run) {
  if (!opts.on_progress) return {};
  return [&prog, &opts, run](std::size_t i) {
    opts.on_progress(run * prog.ops.size() + i, statements_in_all(prog, opts));
  };
}

bool bench_model(const sc::program& prog, const bench_options& opts, bench_result& res) {
  std::ostream null(nullptr);  // the reports are not what is measured here
  std::ostringstream err;
  model::run_options mopts;
  mopts.check_invariants = false;
  mopts.design = opts.design;
  for (unsigned r = 0; r < opts.repeat; ++r) {
    begin_run(res.model);
    mopts.before_statement = progress_of(prog, opts, r);
    mopts.on_statement = [&](const sc::op& o, ns t) { add(res.model, o, t, r == 0); };
    res.exit_code = model::run(prog, null, err, mopts);
    res.errors += err.str();
    err.str("");
    if (res.exit_code != 0) return false;
  }
  return true;
}

/// The kernel's runs, the same way.
bool bench_kernel(const sc::program& prog, const bench_options& opts, bench_result& res) {
  std::ostream null(nullptr);
  std::ostringstream err;
  auto& samples = res.kernel.emplace();
  back_end_samples* share = opts.kernel_share ? &res.kernel_share.emplace() : nullptr;
  kcheck::run_options kopts;
  kopts.on_lock_wait = opts.on_lock_wait;
  kopts.kernel_share = opts.kernel_share;
  for (unsigned r = 0; r < opts.repeat; ++r) {
    begin_run(samples);
    if (share) begin_run(*share);
    kopts.before_statement = progress_of(prog, opts, (opts.kernel_only ? 0 : opts.repeat) + r);
    kopts.on_statement = [&](const sc::op& o, const kcheck::statement_timing& t) {
      add(samples, o, t.agent.value_or(t.wall), r == 0);
      if (!share || !kcheck::kernel_share_measures(sc::statement_kind(o))) return;
      if (t.kernel) add(*share, o, *t.kernel, r == 0);
      else
        // Its process's address space was torn down by another (a reader of /proc/PID
        // held it): the kind's samples would be short.
        res.errors += fmt::format("{}:{}: the kernel's tracepoints did not time this {} (run {})\n", prog.file, o.line,
                                  sc::statement_kind(o), r + 1);
    };
    res.exit_code = kcheck::run(prog, null, err, kopts).exit_code;
    res.errors += err.str();
    err.str("");
    if (res.exit_code != 0) return false;
  }
  return true;
}

}  // namespace

summary summarize(std::span<const ns> samples) {
  std::vector<ns> v(samples.begin(), samples.end());
  std::sort(v.begin(), v.end());
  const auto n = v.size();
  const ns median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  return {median, v.front(), v.back()};
}

bench_result bench(const sc::program& prog, const bench_options& opts) {
  if (opts.repeat == 0) throw std::invalid_argument("lab::bench: repeat must be at least 1");
  if (opts.kernel_share && !opts.vs_kernel && !opts.kernel_only)
    throw std::invalid_argument("lab::bench: kernel_share needs vs_kernel or kernel_only");
  bench_result res;
  if (opts.vs_kernel || opts.kernel_only) {
    if (auto why = kcheck::missing_privileges()) {
      res.exit_code = sc::EXIT_SCENARIO_ERROR;
      res.kernel_unavailable = *why;
      return res;
    }
  }
  res.kinds = kinds_in_order(prog);
  if (opts.kernel_only) {
    (void)bench_kernel(prog, opts, res);
    return res;
  }
  if (!bench_model(prog, opts, res)) return res;
  if (opts.vs_kernel) (void)bench_kernel(prog, opts, res);
  return res;
}

}  // namespace rmapkit::lab
