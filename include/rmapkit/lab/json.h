// The design lab's results as JSON documents (docs/json.md, kinds "compare", "bench",
// "diff"): what `rmapkit compare|bench|diff --json` print.
#pragma once

#include <nlohmann/json.hpp>

#include "rmapkit/lab/bench.h"
#include "rmapkit/lab/compare.h"
#include "rmapkit/lab/diff.h"
#include "rmapkit/scenario/json.h"
#include "rmapkit/scenario/program.h"

namespace rmapkit::lab {

/// compare()'s result for @prog: every design's costs, the kernel's counts when measured,
/// and the errors (kernel_unavailable and compare_result::errors).
[[nodiscard]] nlohmann::json compare_document(const scenario::program& prog, const compare_result& res);

/// bench()'s result for @prog run with @opts: per statement kind and in total, each back
/// end's samples (one per run) and their median and spread, in nanoseconds.
[[nodiscard]] nlohmann::json bench_document(const scenario::program& prog, const bench_options& opts,
                                            const bench_result& res);

/// diff()'s result for @prog: each back end's outcome (its report as text, its errors),
/// whether they agree, and the unified diff when they do not.
[[nodiscard]] nlohmann::json diff_document(const scenario::program& prog, const diff_result& res);

}  // namespace rmapkit::lab
