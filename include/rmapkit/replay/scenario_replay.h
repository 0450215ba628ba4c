// A recording of the kernel runner read back as its scenario's report: `rmapkit record --
// rmapkit kernel S.rmap`, then `rmapkit replay T.rtrace --scenario S.rmap`. The trace is
// replayed on the model, and each `check` of S is printed from the replayed machine at the
// point of the trace where the runner took it — which must be what `rmapkit run S` prints.
//
// The trace does not say where the statements begin: the replay finds out by following the
// events the scenario's statements must leave (docs/rtrace.md, "A recording of the kernel
// runner"), and fails, naming the record, when the trace does not follow them.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>

#include "rmapkit/replay/replay.h"
#include "rmapkit/scenario/program.h"

namespace rmapkit::replay {

/// What replay_scenario() found in the trace, for its summary line.
struct scenario_replay_stats {
  std::uint64_t records = 0;    ///< records read
  std::uint64_t followed = 0;   ///< records that are the scenario's statements' events
  std::uint64_t retried = 0;    ///< faults taken twice on one page in one statement (a retried fault)
  std::uint64_t processes = 0;  ///< the trace's tasks found to be the scenario's processes
  std::uint64_t unseen = 0;     ///< accesses that did not fault (no event shows them), made as the scenario says
  std::uint64_t made = 0;       ///< ksm, reclaim and clear_refs statements (no event shows them), made so too
};

/// Replays the trace @in (named @name in messages) and prints every `check` of @prog to
/// @out as `rmapkit run` prints it; a summary goes to @err, and to @stats when given.
/// Returns 0; 1 when the trace does not follow the scenario (the record and the expected
/// event are named on @err); 2 when the trace is bad or the model refuses the scenario
/// itself; 3 when the model breaks an invariant.
int replay_scenario(std::istream& in, const std::string& name, const scenario::program& prog,
                    const replay_options& opts, std::ostream& out, std::ostream& err,
                    scenario_replay_stats* stats = nullptr);

}  // namespace rmapkit::replay
