// rmapkit html: the step-through page of a scenario (the view library renders it; this
// reads the scenario and writes the page).
#pragma once

#include <iosfwd>
#include <string>

namespace rmapkit::tool {

struct html_args {
  std::string file;    ///< the scenario, or - for standard input
  std::string output;  ///< -o: the page; - for standard output
  std::string design = "linux-6";
  bool no_compress = false;
  bool no_pictures = false;
  bool check_invariants = false;
  bool stats = false;  ///< --stats: what went into the page, on standard error
};

/// `rmapkit html`: exit 0; 2 for bad input (the error on @err names it); or the status
/// the scenario's run failed with (the page is written all the same, ending at the error).
int cmd_html(const html_args& a, std::ostream& out, std::ostream& err);

}  // namespace rmapkit::tool
