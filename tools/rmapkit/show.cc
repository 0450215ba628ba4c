#include "show.h"

#include <algorithm>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "rmapkit/mm/anon_rmap.h"
#include "rmapkit/model/session.h"
#include "rmapkit/scenario/json.h"
#include "rmapkit/view/dot.h"
#include "rmapkit/view/json.h"

namespace rmapkit::tool {

namespace sc = rmapkit::scenario;

namespace {

/// Runs @s up to --at; the reports of the `check`s on the way are not wanted. Returns 0,
/// or the status of the statement that failed (its error already on @err).
int run_to_at(model::session& s, const view_options& opts, std::ostream& err) {
  const std::size_t at = view::parse_at(s.program(), opts.at);
  std::ostringstream reports;
  return s.run_to(at, reports, err);
}

model::run_options session_options(const view_options& opts) {
  model::run_options o;
  o.design = opts.design;
  o.check_invariants = opts.check_invariants;
  return o;
}

/// The state or walk in --format's words: text, DOT, or SVG drawn by Graphviz from the DOT.
template <typename View>
std::string render(const View& v, const std::string& format) {
  if (format == "dot") return view::format_dot(v);
  if (format == "svg") return view::render_svg(view::format_dot(v));
  return view::format_text(v);
}

/// Whether @w walked a page-cache frame (its rmap is the file's, not an anon_vma's).
bool walks_a_file(const view::walk_view& w) {
  for (const auto& f : w.before.folios)
    if (f.id == w.frame) return f.mapping == "file";
  return false;
}

/// The walk under every design that can change it: each one's steps, then the counts in
/// a table.
int walk_all_designs(const sc::program& prog, const view_options& opts, const view::walk_target& target,
                     view::walk_op op, std::ostream& out, std::ostream& err) {
  std::vector<std::pair<std::string, view::walk_counts>> rows;
  // A page-cache frame is walked through its file: then the file designs are the ones
  // that differ (under linux-6); any other frame, under each anonymous design.
  std::vector<std::string> designs(mm::anon_rmap_designs().begin(), mm::anon_rmap_designs().end());
  for (std::size_t i = 0; i < designs.size(); ++i) {
    view_options one = opts;
    one.design = designs[i];
    model::session s(prog, session_options(one));
    if (int code = run_to_at(s, one, err); code != 0) return code;
    const auto w = view::trace_walk(s, target, op);
    if (i == 0 && walks_a_file(w)) {
      designs.clear();
      for (auto f : mm::file_rmap_designs()) designs.push_back(mm::rmap_design_name{"linux-6", std::string(f)}.full());
    }
    out << view::format_text(w, false) << '\n';
    rows.emplace_back(one.design, w.counts);
  }
  std::size_t width = 14;
  for (const auto& [d, c] : rows) width = std::max(width, d.size() + 2);
  out << fmt::format("{:<{}}{:>9}{:>14}{:>15}{:>8}\n", "design", width, "entries", "vmas_visited", "ptes_examined",
                     "misses");
  for (const auto& [d, c] : rows)
    out << fmt::format("{:<{}}{:>9}{:>14}{:>15}{:>8}\n", d, width, c.entries, c.vmas_visited, c.ptes_examined,
                       c.misses);
  return 0;
}

}  // namespace

int cmd_show(const sc::program& prog, const view_options& opts, const view::filter& f, std::ostream& out,
             std::ostream& err) {
  const bool json = opts.format == "json";
  std::ostringstream errors;  // with --json, errors go into the document
  std::ostream& e = json ? errors : err;
  std::optional<view::state> st;
  std::string drawn;  // text, DOT or SVG
  int code = 0;
  try {
    model::session s(prog, session_options(opts));
    code = run_to_at(s, opts, e);
    if (code == 0) st = view::snapshot(s, f);
    if (st && !json) drawn = render(*st, opts.format);  // inside the try: svg may fail
  } catch (const view::view_error& x) {
    e << sc::diag{prog.file, 0, x.what()}.str() << '\n';
    code = sc::EXIT_SCENARIO_ERROR;
  }
  if (json) out << sc::dump(view::show_document(st ? &*st : nullptr, sc::parse_diags(errors.str(), prog.file)));
  else if (code == 0) out << drawn;
  return code;
}

int cmd_walk(const sc::program& prog, const view_options& opts, const view::walk_target& target, const std::string& op,
             std::ostream& out, std::ostream& err) {
  const bool json = opts.format == "json";
  std::ostringstream errors;
  std::ostream& e = json ? errors : err;
  std::optional<view::walk_view> w;
  std::string drawn;
  int code = 0;
  try {
    if (!target.frame && !target.page) throw view::view_error("which frame? --frame K or --page P:REGION:IDX");
    const view::walk_op wop = view::parse_walk_op(op);
    if (opts.all_designs) {
      if (json) throw view::view_error("--all-designs prints text: run walk --json once per --design");
      if (opts.format == "dot" || opts.format == "svg")
        throw view::view_error("--all-designs prints text: run walk --format " + opts.format + " once per --design");
      return walk_all_designs(prog, opts, target, wop, out, err);
    }
    model::session s(prog, session_options(opts));
    code = run_to_at(s, opts, e);
    if (code == 0) w = view::trace_walk(s, target, wop);
    if (w && !json) drawn = render(*w, opts.format);
  } catch (const view::view_error& x) {
    e << sc::diag{prog.file, 0, x.what()}.str() << '\n';
    code = sc::EXIT_SCENARIO_ERROR;
  }
  if (json) out << sc::dump(view::walk_document(w ? &*w : nullptr, sc::parse_diags(errors.str(), prog.file)));
  else if (code == 0) out << drawn;
  return code;
}

}  // namespace rmapkit::tool
