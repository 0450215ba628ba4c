#include "show.h"

#include <ostream>
#include <sstream>

#include "rmapkit/model/session.h"
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

}  // namespace

int cmd_show(const sc::program& prog, const view_options& opts, const view::filter& f, std::ostream& out,
             std::ostream& err) {
  try {
    model::session s(prog, session_options(opts));
    if (int code = run_to_at(s, opts, err); code != 0) return code;
    const auto st = view::snapshot(s, f);
    out << (opts.format == "json" ? view::format_json(st) : view::format_text(st));
    return 0;
  } catch (const view::view_error& e) {
    err << "rmapkit show: " << e.what() << '\n';
    return sc::EXIT_SCENARIO_ERROR;
  }
}

int cmd_walk(const sc::program& prog, const view_options& opts, const view::walk_target& target, const std::string& op,
             std::ostream& out, std::ostream& err) {
  try {
    const view::walk_op wop = view::parse_walk_op(op);
    model::session s(prog, session_options(opts));
    if (int code = run_to_at(s, opts, err); code != 0) return code;
    const auto w = view::trace_walk(s, target, wop);
    out << (opts.format == "json" ? view::format_json(w) : view::format_text(w));
    return 0;
  } catch (const view::view_error& e) {
    err << "rmapkit walk: " << e.what() << '\n';
    return sc::EXIT_SCENARIO_ERROR;
  }
}

}  // namespace rmapkit::tool
