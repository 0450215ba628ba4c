#include "html.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <utility>

#include <fmt/format.h>

#include "rmapkit/scenario/parser.h"
#include "rmapkit/view/html.h"
#include "rmapkit/view/state.h"

namespace rmapkit::tool {

namespace sc = rmapkit::scenario;

namespace {

/// The scenario's text: the page shows it, comments and all. Read as every command reads
/// a scenario (size cap, no directory, no NUL byte).
bool read_source(const std::string& path, std::string& text, std::ostream& err) {
  auto read = sc::read_scenario_text(path);
  if (!read) {
    err << read.error().str() << '\n';
    return false;
  }
  text = std::move(*read);
  return true;
}

}  // namespace

int cmd_html(const html_args& a, std::ostream& out, std::ostream& err) {
  view::html_options opts;
  opts.design = a.design;
  opts.compress = !a.no_compress;
  opts.pictures = !a.no_pictures;
  opts.check_invariants = a.check_invariants;
  if (!read_source(a.file, opts.source, err)) return sc::EXIT_SCENARIO_ERROR;
  auto parsed = sc::parse(opts.source, a.file);
  if (!parsed) {
    err << parsed.error().str() << '\n';
    return sc::EXIT_SCENARIO_ERROR;
  }
  auto prog = sc::resolve(*parsed);
  if (!prog) {
    err << prog.error().str() << '\n';
    return sc::EXIT_SCENARIO_ERROR;
  }
  view::html_summary sum;
  std::string page;
  try {
    page = view::render_html(*prog, opts, &sum);
  } catch (const view::view_error& e) {
    err << "rmapkit html: " << e.what() << '\n';
    return sc::EXIT_SCENARIO_ERROR;
  }
  if (a.output == "-") {
    out << page;
  } else {
    std::ofstream file(a.output, std::ios::binary | std::ios::trunc);
    if (!(file << page) || !file.flush()) {
      err << a.output << ": cannot write: " << std::strerror(errno) << '\n';
      return 1;
    }
  }
  if (opts.pictures && !sum.svg)
    err << "rmapkit html: no pictures: Graphviz's dot program is not installed (apt-get install graphviz); the "
           "page shows the state in words\n";
  if (a.stats)
    err << fmt::format("statements={} pictures={} frame_tables={} walks={} data_bytes={} page_bytes={}\n",
                       sum.statements, sum.pictures, sum.tables, sum.walks, sum.data_bytes, sum.page_bytes);
  return sum.status;
}

}  // namespace rmapkit::tool
