// Replay speed: events per second through a trace's reader and the model, for the binary
// and the text form (the goal: at least a million events a second). The trace is a
// build-like storm of short-lived forked processes (scenario::generate_buildstorm()), made
// into a trace by the model (replay::trace_scenario()), so every event is one a recording
// of the kernel runner would hold: mmaps, faults, forks and exits.
//
//   rmapkit_replay_bench             full sizes
//   rmapkit_replay_bench --smoke     tiny sizes (the ctest smoke run)
#include <sstream>
#include <string>

#include <benchmark/benchmark.h>

#include "bench_main.h"
#include "rmapkit/replay/replay.h"
#include "rmapkit/replay/scenario_trace.h"
#include "rmapkit/scenario/parser.h"
#include "rmapkit/scenario/workloads.h"

namespace {

namespace rp = rmapkit::replay;
namespace sc = rmapkit::scenario;
bool g_smoke = false;

/// The trace of a build storm of @jobs jobs, in @form, and how many records it holds.
std::pair<std::string, std::uint64_t> storm_trace(unsigned jobs, rp::encoding form) {
  auto parsed = sc::parse(sc::generate_buildstorm({.jobs = jobs, .parallel = 4, .pages = 16}), "storm.rmap");
  if (!parsed) throw std::runtime_error(parsed.error().str());
  auto prog = sc::resolve(*parsed);
  if (!prog) throw std::runtime_error(prog.error().str());
  std::ostringstream out, err;
  rp::writer w(out, form, rp::scenario_header());
  rmapkit::model::run_options opts;
  opts.check_invariants = false;
  if (rp::trace_scenario(*prog, w, err, opts) != 0) throw std::runtime_error(err.str());
  std::istringstream in(out.str());
  rp::reader r(in, "storm");
  std::uint64_t n = 0;
  while (r.next()) ++n;
  return {out.str(), n};
}

void replay(benchmark::State& st, rp::encoding form) {
  const auto [trace, records] = storm_trace(static_cast<unsigned>(st.range(0)), form);
  for (auto _ : st) {
    std::istringstream in(trace);
    rp::reader r(in, "storm");
    rp::replayer p;
    while (auto rec = r.next())
      if (!std::holds_alternative<rp::ev_snapshot>(rec->ev)) p.apply(*rec);
    benchmark::DoNotOptimize(p.stats().events);
  }
  st.SetItemsProcessed(st.iterations() * static_cast<std::int64_t>(records));
  st.counters["records"] = static_cast<double>(records);
  st.counters["trace_bytes"] = static_cast<double>(trace.size());
}

void replay_binary(benchmark::State& st) { replay(st, rp::encoding::binary); }
void replay_text(benchmark::State& st) { replay(st, rp::encoding::text); }

void register_all() {
  const std::int64_t jobs = g_smoke ? 4 : 2000;
  benchmark::RegisterBenchmark("replay/binary", replay_binary)->Arg(jobs)->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("replay/text", replay_text)->Arg(jobs)->Unit(benchmark::kMillisecond);
}

}  // namespace

int main(int argc, char** argv) { return rmapkit::bench::benchmark_main(argc, argv, g_smoke, register_all); }
