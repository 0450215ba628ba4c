// rmapkit show and rmapkit walk: the model's reverse map at one moment of a scenario, and
// one rmap walk step by step (the view library does the work; this prints it).
#pragma once

#include <iosfwd>
#include <string>

#include "rmapkit/scenario/program.h"
#include "rmapkit/view/state.h"
#include "rmapkit/view/walk.h"

namespace rmapkit::tool {

/// Where and how: the options `show` and `walk` share.
struct view_options {
  std::string at = "end";  ///< --at: N, line:L or end
  std::string design = "linux-6";
  std::string format = "text";  ///< text, dot, svg, json
  /// Check the model's invariants after every statement on the way (off by default: a
  /// look at one frame must not cost a check of the whole machine per statement).
  bool check_invariants = false;
  /// walk: the same walk under every design, one after the other, then their counts side
  /// by side (text only).
  bool all_designs = false;
};

/// `rmapkit show`: exit 0, or 2 for bad input (the error on @err names it), or the
/// status the scenario's run failed with before reaching --at.
int cmd_show(const scenario::program& prog, const view_options& opts, const view::filter& f, std::ostream& out,
             std::ostream& err);

/// `rmapkit walk`.
int cmd_walk(const scenario::program& prog, const view_options& opts, const view::walk_target& target,
             const std::string& op, std::ostream& out, std::ostream& err);

}  // namespace rmapkit::tool
