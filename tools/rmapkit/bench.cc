// rmapkit bench: the design lab's timing (lab/bench.cc) as a table. For each statement
// kind it shows how many statements of that kind one run has, and the median and the
// spread (min..max) over the runs of their summed time; with --vs-kernel the same for the
// kernel and the ratio kernel/model of the medians (how many times faster the model is);
// with --kernel-only the kernel's alone. --kernel-share adds the kernel's own time from its
// tracepoints (and the ratio share/model) for the kinds they can time; its total row sums
// those kinds alone.
#include "bench.h"

#include <chrono>
#include <iostream>
#include <ostream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "progress.h"
#include "rmapkit/lab/json.h"

namespace rmapkit::tool {

namespace {

namespace sc = rmapkit::scenario;
using ns = std::chrono::nanoseconds;

std::string human(ns t) {
  auto c = static_cast<double>(t.count());
  if (c < 1e3) return fmt::format("{:.0f}ns", c);
  if (c < 1e6) return fmt::format("{:.1f}us", c / 1e3);
  if (c < 1e9) return fmt::format("{:.2f}ms", c / 1e6);
  return fmt::format("{:.2f}s", c / 1e9);
}

std::string spread(const lab::summary& s) { return human(s.min) + ".." + human(s.max); }

/// How many times faster the model is: the ratio of the medians, @other (the kernel, or its
/// share) over @model; 0 when the model's median is 0.
double times_faster(const lab::summary& other, const lab::summary& model) {
  return model.median.count() > 0
             ? static_cast<double>(other.median.count()) / static_cast<double>(model.median.count())
             : 0.0;
}

/// The --kernel-share columns of @kind: the kernel's own time, and share/model (how many
/// times faster the model is than the kernel's work alone); "-" for a kind its tracepoints
/// do not time. The total row gives the sum over those kinds, with no ratio: the model's
/// total is over all.
std::string share_columns(const lab::bench_result& res, const std::string& kind, const lab::summary* model) {
  const auto& share = *res.kernel_share;
  const bool total = kind == "total";
  auto it = share.kinds.find(kind);
  if (!total && it == share.kinds.end())
    return fmt::format("  {:>9} {:>19}{}", "-", "", model ? fmt::format("  {:>12}", "-") : "");
  auto ks = lab::summarize(total ? share.total : it->second.runs);
  std::string out = fmt::format("  {:>9} {:>19}", human(ks.median), spread(ks));
  if (total && model) out += fmt::format("  {:>12}", "-");
  else if (model) out += fmt::format("  {:>11.1f}x", times_faster(ks, *model));
  return out;
}

std::string share_header(bool model) {
  return fmt::format("  {:>9} {:>19}{}", "share", "share min..max",
                     model ? fmt::format("  {:>12}", "share/model") : "");
}

/// --kernel-only: the kernel's columns alone.
void print_kernel_table(const sc::program& prog, const lab::bench_options& opts, const lab::bench_result& res,
                        std::ostream& out) {
  out << fmt::format("rmapkit bench {}: {} statements, {} run{} on the kernel only\n", prog.file, prog.ops.size(),
                     opts.repeat, opts.repeat == 1 ? "" : "s");
  out << fmt::format("{:<12} {:>6}  {:>9} {:>19}", "kind", "count", "kernel", "kernel min..max");
  if (res.kernel_share) out << share_header(false);
  out << '\n';
  auto row = [&](const std::string& name, std::size_t count, const std::vector<ns>& k) {
    auto ks = lab::summarize(k);
    out << fmt::format("{:<12} {:>6}  {:>9} {:>19}", name, count, human(ks.median), spread(ks));
    if (res.kernel_share) out << share_columns(res, name, nullptr);
    out << '\n';
  };
  for (const auto& k : res.kinds)
    if (auto it = res.kernel->kinds.find(k); it != res.kernel->kinds.end()) row(k, it->second.count, it->second.runs);
  row("total", prog.ops.size(), res.kernel->total);
}

void print_table(const sc::program& prog, const lab::bench_options& opts, const lab::bench_result& res,
                 std::ostream& out) {
  if (opts.kernel_only) {
    print_kernel_table(prog, opts, res, out);
    return;
  }
  out << fmt::format("rmapkit bench {}: {} statements, {} run{} on the model ({}){}\n", prog.file, prog.ops.size(),
                     opts.repeat, opts.repeat == 1 ? "" : "s", opts.design, res.kernel ? " and on the kernel" : "");
  out << fmt::format("{:<12} {:>6}  {:>9} {:>19}", "kind", "count", "model", "model min..max");
  if (res.kernel) out << fmt::format("  {:>9} {:>19}  {:>12}", "kernel", "kernel min..max", "kernel/model");
  if (res.kernel_share) out << share_header(true);
  out << '\n';
  auto row = [&](const std::string& name, std::size_t count, const std::vector<ns>& m, const std::vector<ns>* k) {
    auto ms = lab::summarize(m);
    out << fmt::format("{:<12} {:>6}  {:>9} {:>19}", name, count, human(ms.median), spread(ms));
    if (k) {
      auto ks = lab::summarize(*k);
      out << fmt::format("  {:>9} {:>19}  {:>11.1f}x", human(ks.median), spread(ks), times_faster(ks, ms));
    }
    if (res.kernel_share) out << share_columns(res, name, &ms);
    out << '\n';
  };
  for (const auto& k : res.kinds) {
    auto m = res.model.kinds.find(k);
    if (m == res.model.kinds.end()) continue;  // not reached (cannot happen after a clean run)
    row(k, m->second.count, m->second.runs, res.kernel ? &res.kernel->kinds.at(k).runs : nullptr);
  }
  row("total", prog.ops.size(), res.model.total, res.kernel ? &res.kernel->total : nullptr);
}

}  // namespace

int cmd_bench(const sc::program& prog, const lab::bench_options& opts, bool json, std::ostream& out,
              std::ostream& err) {
  const auto res = [&] {
    progress_bar bar("bench", 0, std::cerr, is_terminal_stderr());
    auto o = opts;
    o.on_progress = [&](std::size_t done, std::size_t total) { bar.update(done, total); };
    return lab::bench(prog, o);
  }();
  if (json) {
    out << sc::dump(lab::bench_document(prog, opts, res));
    return res.exit_code;
  }
  if (res.kernel_unavailable) {
    err << fmt::format("rmapkit bench: {} runs the scenario on the live kernel: {}\n",
                       opts.kernel_only ? "--kernel-only" : "--vs-kernel", *res.kernel_unavailable);
    return res.exit_code;
  }
  err << res.errors;
  if (res.exit_code != 0) return res.exit_code;
  print_table(prog, opts, res, out);
  return 0;
}

}  // namespace rmapkit::tool
