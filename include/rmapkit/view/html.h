// `rmapkit html`: one self-contained page that steps through a scenario statement by
// statement: the source with the current statement marked, the structure picture, the
// `check` reports so far, and each frame's rmap walk (docs/html-page.md).
#pragma once

#include <cstddef>
#include <string>

#include "rmapkit/scenario/program.h"

namespace rmapkit::view {

struct html_options {
  std::string design = "linux-6";
  /// The scenario's text, shown with its comments; empty: the statements' own text.
  std::string source;
  /// Gzip the page's data (the browser inflates it with DecompressionStream): a page
  /// about a tenth of the size. Off: the data is plain JSON, for reading and diffing.
  bool compress = true;
  /// Draw each state with Graphviz (view/dot.h) above its words; off: the words alone,
  /// a page written in a tenth of the time.
  bool pictures = true;
  /// Check every invariant after every statement (model::run_options): off, as for
  /// `show` and `walk`, which look at the state rather than test the model.
  bool check_invariants = false;
};

/// What went into a page, and how the run ended.
struct html_summary {
  std::size_t statements = 0;                       ///< statements run (the page has one more moment: before the first)
  std::size_t pictures = 0, tables = 0, walks = 0;  ///< distinct ones, each stored once
  bool svg = false;            ///< the pictures are SVG (false: off, or Graphviz's dot is not installed)
  std::size_t data_bytes = 0;  ///< the page's data as JSON, before compression
  std::size_t page_bytes = 0;
  /// 0, or the status run() exits with when a statement fails: the page then ends at the
  /// failed statement, with its error as that statement's report.
  int status = 0;
};

/// The page for @prog: a session runs every statement, and after each one the page
/// stores the state, the report, and a walk (--op none, which changes nothing) of every
/// frame. view_error for an unknown design.
[[nodiscard]] std::string render_html(const scenario::program& prog, const html_options& opts,
                                      html_summary* summary = nullptr);

}  // namespace rmapkit::view
