// What `rmapkit show --frame K` and `rmapkit walk` cost once the scenario has run: the
// time to answer for one frame of a machine of N frames (the goal: well under a second
// at a million frames, because neither dumps nor rebuilds the world for one frame), and
// for comparison the time to snapshot the whole state.
//
//   rmapkit_view_bench                      full sizes (up to 1,000,000 frames)
//   rmapkit_view_bench --smoke              tiny sizes (the ctest smoke run)
#include <sstream>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "bench_main.h"
#include "rmapkit/model/session.h"
#include "rmapkit/scenario/parser.h"
#include "rmapkit/view/state.h"
#include "rmapkit/view/walk.h"

namespace {

namespace sc = rmapkit::scenario;
bool g_smoke = false;

/// P maps and writes @frames pages in regions of at most 250,000 pages, then forks C, so
/// that every frame is mapped twice and its anon_vma tree has two VMAs.
sc::program world(std::int64_t frames) {
  std::string text = "spawn P\n";
  int region = 0;
  for (std::int64_t left = frames; left > 0; ++region) {
    const std::int64_t pages = std::min<std::int64_t>(left, 250000);
    text += fmt::format("P: mmap R{} anon private pages={}\nP: write R{}[0:{}]\n", region, pages, region, pages);
    left -= pages;
  }
  text += "P: fork C\n";
  auto parsed = sc::parse(text, "world.rmap");
  if (!parsed) throw std::runtime_error(parsed.error().str());
  auto prog = sc::resolve(*parsed);
  if (!prog) throw std::runtime_error(prog.error().str());
  return std::move(*prog);
}

struct ran {
  sc::program prog;
  rmapkit::model::session session;
  explicit ran(std::int64_t frames) : prog(world(frames)), session(prog, options()) {
    std::ostringstream out, err;
    if (session.run_to(prog.ops.size(), out, err) != 0) throw std::runtime_error(err.str());
  }
  static rmapkit::model::run_options options() {
    rmapkit::model::run_options o;
    o.check_invariants = false;
    return o;
  }
};

void show_frame(benchmark::State& st) {
  ran r(st.range(0));
  rmapkit::view::filter f;
  f.frame = static_cast<std::uint64_t>(st.range(0));  // the last frame a check would number
  for (auto _ : st) benchmark::DoNotOptimize(rmapkit::view::snapshot(r.session, f));
}

void walk_frame(benchmark::State& st) {
  ran r(st.range(0));
  rmapkit::view::walk_target t;
  t.frame = static_cast<std::uint64_t>(st.range(0));
  for (auto _ : st) benchmark::DoNotOptimize(rmapkit::view::trace_walk(r.session, t, rmapkit::view::walk_op::none));
}

void show_all(benchmark::State& st) {
  ran r(st.range(0));
  for (auto _ : st) benchmark::DoNotOptimize(rmapkit::view::snapshot(r.session));
}

void register_all() {
  const std::vector<std::int64_t> big = g_smoke ? std::vector<std::int64_t>{16}
                                                : std::vector<std::int64_t>{1000, 100000, 1000000};
  const std::vector<std::int64_t> small = g_smoke ? std::vector<std::int64_t>{16}
                                                  : std::vector<std::int64_t>{1000, 100000};
  for (auto n : big) {
    benchmark::RegisterBenchmark("show_frame", show_frame)->Arg(n)->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("walk_frame", walk_frame)->Arg(n)->Unit(benchmark::kMillisecond);
  }
  for (auto n : small) benchmark::RegisterBenchmark("show_all", show_all)->Arg(n)->Unit(benchmark::kMillisecond);
}

}  // namespace

int main(int argc, char** argv) { return rmapkit::bench::benchmark_main(argc, argv, g_smoke, register_all); }
