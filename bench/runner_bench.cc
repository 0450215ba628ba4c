// The scenario layer's cost per process: parse, resolve and run on the model of a scenario
// that spawns processes and has them exit in the order they were spawned, `alive` of them
// alive at a time, 20,000 in all. The order is the worst for a process table that exit
// searches and shifts; in a table that does not, the time per process stays flat as `alive`
// grows, and Google Benchmark's complexity fit (the `_BigO` row) says O(1). A fit of O(N)
// is the regression this benchmark is here to show — with figures, not a timing assertion.
//
//   rmapkit_runner_bench             full sizes
//   rmapkit_runner_bench --smoke     tiny sizes (the ctest smoke run)
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>

#include <benchmark/benchmark.h>

#include "bench_main.h"
#include "rmapkit/model/model.h"
#include "rmapkit/scenario/parser.h"
#include "rmapkit/scenario/program.h"

namespace {

namespace sc = rmapkit::scenario;
bool g_smoke = false;

/// @total spawns, in batches of @alive that then exit in spawn order.
std::string churn_text(std::int64_t alive, std::int64_t total) {
  std::string text;
  for (std::int64_t base = 0; base < total; base += alive) {
    for (std::int64_t i = base; i < base + alive; ++i) text += "spawn P" + std::to_string(i) + '\n';
    for (std::int64_t i = base; i < base + alive; ++i) text += 'P' + std::to_string(i) + ": exit\n";
  }
  return text + "check\n";
}

void spawn_exit_in_spawn_order(benchmark::State& st) {
  const auto alive = st.range(0);
  const std::int64_t total = g_smoke ? 2 * alive : 20000;
  const auto text = churn_text(alive, total);
  rmapkit::model::run_options opts;
  opts.check_invariants = false;
  for (auto _ : st) {
    auto parsed = sc::parse(text, "churn.rmap");
    if (!parsed) throw std::runtime_error(parsed.error().str());
    auto prog = sc::resolve(*parsed);
    if (!prog) throw std::runtime_error(prog.error().str());
    std::ostringstream out, err;
    if (rmapkit::model::run(*prog, out, err, opts) != 0) throw std::runtime_error(err.str());
    if (out.str() != "check\nend\n") throw std::runtime_error("unexpected report: " + out.str());
  }
  st.SetComplexityN(alive);
  st.SetItemsProcessed(st.iterations() * total);  // items/s: processes spawned and exited a second
}

void register_all() {
  auto* b = benchmark::RegisterBenchmark("runner/spawn_exit_in_spawn_order", spawn_exit_in_spawn_order);
  b->Unit(benchmark::kMillisecond)->Complexity();
  if (g_smoke) b->Arg(4);
  else b->Arg(100)->Arg(1000)->Arg(10000);
}

}  // namespace

int main(int argc, char** argv) { return rmapkit::bench::benchmark_main(argc, argv, g_smoke, register_all); }
