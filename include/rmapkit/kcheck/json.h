// `rmapkit kernel --json`: a scenario run on the live kernel, as one JSON document
// (docs/json.md, kind "kernel").
#pragma once

#include "rmapkit/kcheck/kernel.h"
#include "rmapkit/scenario/json.h"
#include "rmapkit/scenario/program.h"

namespace rmapkit::kcheck {

/// Runs @prog as run() does and returns its document: the reports of the `check`s that
/// ran, with opts.ksm_counters the KSM counters after each `ksm`, with opts.kmem_counts the
/// anon_vma and anon_vma_chain objects allocated and freed, and the errors (why the kernel
/// back end cannot run here, the failing statement, the signal that interrupted it).
/// exit_code and signal are run()'s. opts.trace must be off (its lines would mix with the
/// errors); opts.on_check, on_ksm_counters and on_kmem_counts are not called.
[[nodiscard]] scenario::json_outcome run_json(const scenario::program& prog, const run_options& opts = {});

}  // namespace rmapkit::kcheck
