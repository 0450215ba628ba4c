// A scenario as a trace: the events a recorder watching the kernel runner's agents would
// see (docs/rtrace.md, "Traces made from scenarios"), with each `check` as a snapshot of
// the model's state. A replay of the trace must reach every snapshot: the test of the
// replay path against the scenario path, and a way to read a scenario by address.
#pragma once

#include <iosfwd>

#include "rmapkit/model/model.h"
#include "rmapkit/replay/rtrace.h"
#include "rmapkit/scenario/program.h"

namespace rmapkit::replay {

/// The tid a trace made from a scenario gives process @p.
[[nodiscard]] constexpr tid_t scenario_tid(scenario::proc_id p) { return 1000 + static_cast<tid_t>(p); }

/// Runs @prog on the model (with @opts) and writes its trace to @w: the header's recorder
/// is rmapkit, each record's time the statement's line. Stops at the first statement the
/// model refuses, as run() does, with the error on @err. Returns run()'s exit status.
int trace_scenario(const scenario::program& prog, writer& w, std::ostream& err, const model::run_options& opts = {});

/// The header of such a trace.
[[nodiscard]] header scenario_header();

}  // namespace rmapkit::replay
