// rmapkit compare: prints what the design lab's compare() measured, as a table or as JSON
// (scripts/design_lab.py reads the JSON: its keys and structure are an interface).
#pragma once

#include <iosfwd>

#include "rmapkit/lab/compare.h"
#include "rmapkit/scenario/program.h"

namespace rmapkit::tool {

/// Runs lab::compare() and prints the comparison to @out (JSON when @json); errors to
/// @err. Exit status 0, 1 (--vs-kernel: linux-6 and the kernel differ), 2 (the scenario
/// is wrong or refused), 3 (designs disagree: a model bug).
int cmd_compare(const scenario::program& prog, const lab::compare_options& opts, bool json, std::ostream& out,
                std::ostream& err);

}  // namespace rmapkit::tool
