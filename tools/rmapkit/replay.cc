// rmapkit replay and rmapkit rtrace (replay.h): files opened and errors worded here; the
// replay library does the work.
#include "replay.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>

#include <fmt/format.h>

#include "rmapkit/replay/scenario_replay.h"
#include "rmapkit/replay/scenario_trace.h"

namespace rmapkit::tool {

namespace {

/// @path opened for reading (- is standard input); the error names the file and the reason.
std::istream* open_in(const std::string& path, std::unique_ptr<std::ifstream>& holder, std::ostream& err) {
  if (path == "-") return &std::cin;
  holder = std::make_unique<std::ifstream>(path, std::ios::binary);
  if (!*holder) {
    err << path << ": cannot open: " << std::strerror(errno) << '\n';
    return nullptr;
  }
  return holder.get();
}

std::ostream* open_out(const std::string& path, std::unique_ptr<std::ofstream>& holder, std::ostream& err) {
  if (path == "-") return &std::cout;
  holder = std::make_unique<std::ofstream>(path, std::ios::binary | std::ios::trunc);
  if (!*holder) {
    err << path << ": cannot write: " << std::strerror(errno) << '\n';
    return nullptr;
  }
  return holder.get();
}

int finish(std::ostream& out, const std::string& path, std::ostream& err) {
  out.flush();
  if (!out) {
    err << path << ": write error\n";
    return 2;
  }
  return 0;
}

}  // namespace

int cmd_replay(const std::string& file, const replay::replay_run_options& opts, std::ostream& out, std::ostream& err) {
  std::unique_ptr<std::ifstream> holder;
  auto* in = open_in(file, holder, err);
  if (!in) return 2;
  return replay::replay_trace(*in, file, opts, out, err);
}

int cmd_replay_scenario(const std::string& file, const scenario::program& prog, const replay::replay_options& opts,
                        std::ostream& out, std::ostream& err) {
  std::unique_ptr<std::ifstream> holder;
  auto* in = open_in(file, holder, err);
  if (!in) return 2;
  return replay::replay_scenario(*in, file, prog, opts, out, err);
}

int cmd_trace_scenario(const scenario::program& prog, const std::string& output, bool binary,
                       const model::run_options& opts, std::ostream& err) {
  std::unique_ptr<std::ofstream> holder;
  auto* out = open_out(output, holder, err);
  if (!out) return 2;
  replay::writer w(*out, binary ? replay::encoding::binary : replay::encoding::text, replay::scenario_header());
  if (int code = replay::trace_scenario(prog, w, err, opts); code != 0) return code;
  return finish(*out, output, err);
}

int cmd_trace_convert(const std::string& input, const std::string& output, bool binary, std::ostream& err) {
  std::unique_ptr<std::ifstream> in_holder;
  auto* in = open_in(input, in_holder, err);
  if (!in) return 2;
  try {
    replay::reader r(*in, input);
    std::unique_ptr<std::ofstream> out_holder;
    auto* out = open_out(output, out_holder, err);
    if (!out) return 2;
    replay::writer w(*out, binary ? replay::encoding::binary : replay::encoding::text, r.head());
    while (auto rec = r.next()) w.write(*rec);
    return finish(*out, output, err);
  } catch (const replay::trace_error& e) {
    err << e.what() << '\n';
    return 2;
  }
}

int cmd_record(const std::vector<std::string>& argv, const std::string& output, bool binary,
               const replay::record_options& opts, std::ostream& err) {
  if (auto why = replay::record_unavailable()) {
    err << "rmapkit record: " << *why << '\n';
    return 2;
  }
  std::unique_ptr<std::ofstream> holder;
  auto* out = open_out(output, holder, err);
  if (!out) return 2;
  try {
    replay::writer w(*out, binary ? replay::encoding::binary : replay::encoding::text, replay::recording_header());
    const auto st = replay::record_command(argv, w, opts);
    if (int code = finish(*out, output, err); code != 0) return code;
    err << fmt::format(
        "rmapkit record: {} records of {} tasks to {} ({} perf samples, {} side-band records), {} "
        "snapshots\n",
        st.records, st.tasks, output, st.samples, st.side_band, st.snapshots);
    if (st.lost) err << fmt::format("rmapkit record: perf lost {} events: the trace is incomplete\n", st.lost);
    if (st.cuts_skipped)
      err << fmt::format("rmapkit record: {} cuts skipped: the command's tree did not freeze within 2 s\n",
                         st.cuts_skipped);
    for (const auto& [what, n] : st.not_traced)
      err << fmt::format("rmapkit record: not in the trace: {} ({})\n", what, n);
    return st.exit_status;
  } catch (const replay::record_error& e) {
    err << "rmapkit record: " << e.what() << '\n';
    return 2;
  }
}

int cmd_compare_trace(const std::string& file, std::vector<std::string> designs, std::ostream& out, std::ostream& err) {
  std::unique_ptr<std::ifstream> holder;
  auto* in = open_in(file, holder, err);
  if (!in) return 2;
  const std::string trace{std::istreambuf_iterator<char>(*in), std::istreambuf_iterator<char>()};
  if (designs.empty())
    for (auto d : mm::anon_rmap_designs()) designs.emplace_back(d);
  std::vector<replay::design_cost> runs;
  try {
    runs = replay::compare_designs(trace, file, designs);
  } catch (const replay::trace_error& e) {
    err << e.what() << '\n';
    return 2;
  } catch (const replay::replay_error& e) {
    err << file << ": " << e.what() << '\n';
    return 2;
  } catch (const std::logic_error& e) {
    err << file << ": model bug: " << e.what() << '\n';
    return 3;
  }
  out << fmt::format("{}: {} events replayed under {} designs\n", file, runs.front().events, runs.size());
  out << fmt::format("{:<22} {:>9} {:>10}  {}\n", "design", "seconds", "events/s",
                     "rmap objects: allocated / peak live x bytes each (peak bytes)");
  for (const auto& r : runs) {
    std::string objs;
    for (const auto& o : r.objects)
      objs += fmt::format("{}{} {} / {} x {} B ({} B)", objs.empty() ? "" : ", ", o.type, o.allocated, o.peak, o.bytes,
                          o.peak * o.bytes);
    if (r.per_frame_bytes)
      objs += fmt::format("{}+{} B per anonymous frame", objs.empty() ? "" : ", ", r.per_frame_bytes);
    const double rate = r.seconds > 0 ? static_cast<double>(r.events) / r.seconds : 0;
    out << fmt::format("{:<22} {:>9.3f} {:>9.2f}M  {}\n", r.design, r.seconds, rate / 1e6, objs);
  }
  out << "walks: rmap walks / VMAs visited / entries read / upkeep entries\n";
  for (const auto& r : runs)
    out << fmt::format("{:<22} {} / {} / {} / {}\n", r.design, r.walks.walks, r.walks.vmas_visited, r.walks.entries,
                       r.walks.upkeep);
  return 0;
}

}  // namespace rmapkit::tool
