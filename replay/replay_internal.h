// What the replay commands (snapshot.cc: replay_trace(); scenario_replay.cc: replay_scenario())
// share. Not installed.
#pragma once

#include <istream>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>

#include "rmapkit/replay/replay.h"
#include "rmapkit/replay/rtrace.h"

namespace rmapkit::replay {

/// Reads the trace @in (named @name in messages) with @body(reader&), which returns the exit
/// status. The errors a replay can end with become statuses, worded on @err with the record's
/// place: a bad trace or one that contradicts itself 2, a broken model invariant 3.
template <class F>
int replay_guarded(std::istream& in, const std::string& name, std::ostream& err, F&& body) {
  std::optional<reader> rd;
  try {
    rd.emplace(in, name);
    return body(*rd);
  } catch (const trace_error& e) {
    err << e.what() << '\n';
    return 2;
  } catch (const replay_error& e) {
    err << rd->where() << ": " << e.what() << '\n';
    return 2;
  } catch (const std::logic_error& e) {
    err << rd->where() << ": model bug: " << e.what() << '\n';
    return 3;
  }
}

}  // namespace rmapkit::replay
