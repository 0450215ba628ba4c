// rmapkit compare: prints what the design lab's compare() measured, as a table or as JSON
// (lab::compare_document(); scripts/design_lab.py reads it: docs/json.md, kind "compare").
#pragma once

#include <iosfwd>

#include "rmapkit/lab/compare.h"
#include "rmapkit/scenario/program.h"

namespace rmapkit::tool {

/// Runs lab::compare() and prints the comparison to @out; errors to @err (with @json,
/// one document on @out, errors included). Exit status 0, 1 (--vs-kernel: linux-6 and
/// the kernel differ), 2 (the scenario is wrong or refused), 3 (designs disagree: a model
/// bug).
int cmd_compare(const scenario::program& prog, const lab::compare_options& opts, bool json, std::ostream& out,
                std::ostream& err);

}  // namespace rmapkit::tool
