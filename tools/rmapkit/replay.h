// rmapkit replay and rmapkit rtrace: traces (docs/rtrace.md) replayed on the model, made
// from scenarios, and converted between their text and binary forms.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "rmapkit/model/model.h"
#include "rmapkit/replay/record.h"
#include "rmapkit/replay/replay.h"
#include "rmapkit/scenario/program.h"

namespace rmapkit::tool {

/// `rmapkit replay FILE`: exit 0, 1 (a snapshot differs), 2 (bad input), 3 (model bug).
int cmd_replay(const std::string& file, const replay::replay_run_options& opts, std::ostream& out, std::ostream& err);

/// `rmapkit replay FILE --scenario S`: S's checks as the replayed recording of the kernel
/// runner shows them; exit 0, 1 (the trace does not follow S), 2 (bad input), 3 (model bug).
int cmd_replay_scenario(const std::string& file, const scenario::program& prog, const replay::replay_options& opts,
                        std::ostream& out, std::ostream& err);

/// `rmapkit rtrace from-scenario`: the scenario's trace to @output (- for standard output).
int cmd_trace_scenario(const scenario::program& prog, const std::string& output, bool binary,
                       const model::run_options& opts, std::ostream& err);

/// `rmapkit rtrace convert`: @input in the other encoding, or in text (@binary false).
int cmd_trace_convert(const std::string& input, const std::string& output, bool binary, std::ostream& err);

/// `rmapkit compare` of a trace: each design's replay of it, timed, with its rmap objects.
int cmd_compare_trace(const std::string& file, std::vector<std::string> designs, std::ostream& out, std::ostream& err);

/// `rmapkit record`: the command's exit status, or 2 when recording cannot start.
int cmd_record(const std::vector<std::string>& argv, const std::string& output, bool binary,
               const replay::record_options& opts, std::ostream& err);

}  // namespace rmapkit::tool
