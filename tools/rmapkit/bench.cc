// rmapkit bench. The model times each statement in its runner (model::run_options::
// on_statement); the kernel back end reports what its agents measured around the system
// call or page-touch loop of each statement (kcheck::run_options::on_statement), or the
// controller's wall time for statements no agent runs (spawn, file, exit: until the
// process is reaped, ksm, reclaim, check).
//
// For each statement kind the table shows how many statements of that kind one run has,
// and the median and the spread (min..max) over the runs of their summed time; with
// --vs-kernel the same for the kernel and the ratio kernel/model of the medians (how many
// times faster the model is).
#include "bench.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <ostream>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

#include "rmapkit/kcheck/kernel.h"
#include "rmapkit/model/model.h"

namespace rmapkit::tool {

namespace {

namespace sc = rmapkit::scenario;
using ns = std::chrono::nanoseconds;

/// The kind a statement is reported under.
std::string kind_of(const sc::op& o) {
  return std::visit(
      [](const auto& b) -> std::string {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, sc::op_spawn>) return "spawn";
        else if constexpr (std::is_same_v<T, sc::op_file>) return "file";
        else if constexpr (std::is_same_v<T, sc::op_mmap>) return "mmap";
        else if constexpr (std::is_same_v<T, sc::op_read>) return "read";
        else if constexpr (std::is_same_v<T, sc::op_write>) return "write";
        else if constexpr (std::is_same_v<T, sc::op_fork>) return "fork";
        else if constexpr (std::is_same_v<T, sc::op_exit>) return "exit";
        else if constexpr (std::is_same_v<T, sc::op_munmap>) return "munmap";
        else if constexpr (std::is_same_v<T, sc::op_mprotect>) return "mprotect";
        else if constexpr (std::is_same_v<T, sc::op_mremap_resize>) return "mremap";
        else if constexpr (std::is_same_v<T, sc::op_mremap_move>) return "mremap-move";
        else if constexpr (std::is_same_v<T, sc::op_madvise>) return "madvise";
        else if constexpr (std::is_same_v<T, sc::op_mlock>) return "mlock";
        else if constexpr (std::is_same_v<T, sc::op_munlock>) return "munlock";
        else if constexpr (std::is_same_v<T, sc::op_ksm>) return "ksm";
        else if constexpr (std::is_same_v<T, sc::op_reclaim>) return "reclaim";
        else return "check";
      },
      o.body);
}

/// Per kind: statements of that kind in one run, and each run's summed time.
struct samples {
  std::map<std::string, std::size_t> count;
  std::map<std::string, std::vector<ns>> per_run;
  std::vector<ns> total;  ///< each run's time over all statements

  /// Starts the next run.
  void begin_run() {
    for (auto& [k, v] : per_run) v.push_back(ns{0});
    total.push_back(ns{0});
  }
  void add(const std::string& kind, ns t, bool first_run) {
    if (first_run) ++count[kind];
    auto& v = per_run[kind];
    v.resize(total.size(), ns{0});
    v.back() += t;
    total.back() += t;
  }
};

struct summary {
  ns median, min, max;
};

summary stats_of(std::vector<ns> v) {
  std::sort(v.begin(), v.end());
  auto n = v.size();
  ns med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  return {med, v.front(), v.back()};
}

std::string human(ns t) {
  auto c = static_cast<double>(t.count());
  if (c < 1e3) return fmt::format("{:.0f}ns", c);
  if (c < 1e6) return fmt::format("{:.1f}us", c / 1e3);
  if (c < 1e9) return fmt::format("{:.2f}ms", c / 1e6);
  return fmt::format("{:.2f}s", c / 1e9);
}

std::string spread(const summary& s) { return human(s.min) + ".." + human(s.max); }

/// The kinds in the order the scenario first uses them.
std::vector<std::string> kinds_in_order(const sc::program& prog) {
  std::vector<std::string> out;
  for (const auto& o : prog.ops)
    if (auto k = kind_of(o); std::find(out.begin(), out.end(), k) == out.end()) out.push_back(k);
  return out;
}

}  // namespace

int cmd_bench(const sc::program& prog, const bench_options& opts, std::ostream& out, std::ostream& err) {
  if (opts.vs_kernel) {
    if (auto why = kcheck::missing_privileges()) {
      err << "rmapkit bench: --vs-kernel runs the scenario on the live kernel: " << *why << '\n';
      return sc::EXIT_SCENARIO_ERROR;
    }
  }
  std::ostream null(nullptr);  // the reports are not what is measured here

  samples model;
  model::run_options mopts;
  mopts.check_invariants = false;
  mopts.design = opts.design;
  for (unsigned r = 0; r < opts.repeat; ++r) {
    model.begin_run();
    mopts.on_statement = [&](const sc::op& o, ns t) { model.add(kind_of(o), t, r == 0); };
    if (int code = model::run(prog, null, err, mopts); code != 0) return code;
  }

  samples kernel;
  if (opts.vs_kernel) {
    kcheck::run_options kopts;
    for (unsigned r = 0; r < opts.repeat; ++r) {
      kernel.begin_run();
      kopts.on_statement = [&](const sc::op& o, const kcheck::statement_timing& t) {
        kernel.add(kind_of(o), t.agent.value_or(t.wall), r == 0);
      };
      auto res = kcheck::run(prog, null, err, kopts);
      if (res.exit_code != 0) return res.exit_code;
    }
  }

  out << fmt::format("rmapkit bench {}: {} statements, {} run{} on the model ({}){}\n", prog.file, prog.ops.size(),
                     opts.repeat, opts.repeat == 1 ? "" : "s", opts.design, opts.vs_kernel ? " and on the kernel" : "");
  out << fmt::format("{:<12} {:>6}  {:>9} {:>19}", "kind", "count", "model", "model min..max");
  if (opts.vs_kernel) out << fmt::format("  {:>9} {:>19}  {:>12}", "kernel", "kernel min..max", "kernel/model");
  out << '\n';
  auto row = [&](const std::string& name, std::size_t count, const std::vector<ns>& m, const std::vector<ns>* k) {
    auto ms = stats_of(m);
    out << fmt::format("{:<12} {:>6}  {:>9} {:>19}", name, count, human(ms.median), spread(ms));
    if (k) {
      auto ks = stats_of(*k);
      auto ratio = ms.median.count() > 0 ? static_cast<double>(ks.median.count()) / static_cast<double>(ms.median.count())
                                         : 0.0;
      out << fmt::format("  {:>9} {:>19}  {:>11.1f}x", human(ks.median), spread(ks), ratio);
    }
    out << '\n';
  };
  for (const auto& k : kinds_in_order(prog)) {
    if (!model.count.count(k)) continue;  // not reached (cannot happen after a clean run)
    row(k, model.count.at(k), model.per_run.at(k), opts.vs_kernel ? &kernel.per_run.at(k) : nullptr);
  }
  row("total", prog.ops.size(), model.total, opts.vs_kernel ? &kernel.total : nullptr);
  return 0;
}

}  // namespace rmapkit::tool
