// `rmapkit run --json`: a scenario run on the model, as one JSON document (docs/json.md,
// kind "run").
#pragma once

#include "rmapkit/model/model.h"
#include "rmapkit/scenario/json.h"
#include "rmapkit/scenario/program.h"

namespace rmapkit::model {

/// Runs @prog as run() does and returns its document: the reports of the `check`s that
/// ran, with opts.ksm_counters the KSM counters after each `ksm`, with opts.stats the
/// event counters, and the errors (none on success). exit_code is run()'s. Nothing is
/// written anywhere; opts.on_check is not called (the reports are in the document).
[[nodiscard]] scenario::json_outcome run_json(const scenario::program& prog, const run_options& opts = {});

}  // namespace rmapkit::model
