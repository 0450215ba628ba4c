// What a scenario's trace (scenario_trace.cc) shares with the replay of a recording against
// its scenario (scenario_replay.cc). Not installed.
#pragma once

#include <vector>

#include "rmapkit/model/session.h"
#include "rmapkit/replay/rtrace.h"
#include "rmapkit/scenario/program.h"

namespace rmapkit::replay {

/// The events statement @o leaves in a recording of the kernel runner's agents, from the
/// state @s has before it runs; a read or write has one fault per page it touches.
[[nodiscard]] std::vector<event> statement_events(const model::session& s, const scenario::op& o);

}  // namespace rmapkit::replay
