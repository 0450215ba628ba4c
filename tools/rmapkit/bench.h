// rmapkit bench: prints what the design lab's bench() measured, one row per statement kind.
#pragma once

#include <iosfwd>

#include "rmapkit/lab/bench.h"
#include "rmapkit/scenario/program.h"

namespace rmapkit::tool {

/// Runs lab::bench() and prints the table to @out; errors (FILE:LINE: reason, a refusal)
/// to @err (with @json, one document on @out, errors included). Returns the exit status.
int cmd_bench(const scenario::program& prog, const lab::bench_options& opts, bool json, std::ostream& out,
              std::ostream& err);

}  // namespace rmapkit::tool
