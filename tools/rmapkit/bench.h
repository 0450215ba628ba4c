// rmapkit bench: wall time of a scenario's statements per statement kind, on the model
// and (--vs-kernel) on the live kernel, over several runs.
#pragma once

#include <iosfwd>
#include <string>

#include "rmapkit/scenario/program.h"

namespace rmapkit::tool {

struct bench_options {
  unsigned repeat = 5;       ///< runs on each back end
  bool vs_kernel = false;    ///< also on the kernel (root), with the kernel/model ratio
  std::string design = "linux-6";
};

/// Runs @prog @opts.repeat times on each back end and prints the table to @out; errors
/// (FILE:LINE: reason, a refusal) to @err. Returns the exit status.
int cmd_bench(const scenario::program& prog, const bench_options& opts, std::ostream& out, std::ostream& err);

}  // namespace rmapkit::tool
