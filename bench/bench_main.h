// The main() every Google Benchmark executable here shares: `--smoke` (tiny sizes, for
// the ctest smoke run) is taken out of the arguments before Google Benchmark reads them,
// and the benchmarks are registered once it is known.
#pragma once

#include <cstring>
#include <vector>

#include <benchmark/benchmark.h>

namespace rmapkit::bench {

/// Sets @smoke from the arguments, calls @register_all and runs what it registered.
/// Exit status 2 for an argument Google Benchmark does not know.
inline int benchmark_main(int argc, char** argv, bool& smoke, void (*register_all)()) {
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--smoke") == 0) smoke = true;
    else rest.push_back(argv[i]);
  }
  int n = static_cast<int>(rest.size());
  benchmark::Initialize(&n, rest.data());
  if (benchmark::ReportUnrecognizedArguments(n, rest.data())) return 2;
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace rmapkit::bench
