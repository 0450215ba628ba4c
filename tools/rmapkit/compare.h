// rmapkit compare: one scenario under every rmap design, side by side: the objects each
// design allocates, the work of its rmap walks, and what each kind of statement costs.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "rmapkit/scenario/program.h"

namespace rmapkit::tool {

struct compare_options {
  std::vector<std::string> designs;  ///< empty: every design
  bool json = false;
  /// Also count the kernel's anon_vma and anon_vma_chain allocations for the scenario
  /// (kmem tracepoints, root), minus those of its skeleton (the same spawns, forks and
  /// exits without any region: the runner's own), beside the linux-6 design's.
  bool vs_kernel = false;
};

/// Runs @prog once per design and prints the comparison to @out; errors to @err. Exit
/// status 0, 2 (the scenario is wrong or refused), 3 (designs disagree: a model bug).
int cmd_compare(const scenario::program& prog, const compare_options& opts, std::ostream& out, std::ostream& err);

}  // namespace rmapkit::tool
