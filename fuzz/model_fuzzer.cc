// Structure-aware libFuzzer target: the fuzzer's bytes choose statements from small pools
// of names and sizes; a statement is kept only when it resolves after those kept before
// it (statement_checker), so every input is a valid scenario. It runs on the model with
// every invariant checked after every statement (docs/architecture.md#invariants) under
// linux-6 and under a second design the bytes choose: no invariant may break, nothing may
// leak at teardown, and both designs must print the same reports (fuzz/README.md).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>

#include <fmt/format.h>
#include <fuzzer/FuzzedDataProvider.h>

#include "rmapkit/mm/anon_rmap.h"
#include "rmapkit/model/model.h"
#include "rmapkit/scenario/parser.h"
#include "rmapkit/scenario/program.h"

namespace {

namespace sc = rmapkit::scenario;

/// Statements a scenario has at most: enough to fork, split, remap and reclaim, few
/// enough that an input runs in a millisecond or so.
constexpr int MAX_STATEMENTS = 48;

class scenario_builder {
 public:
  explicit scenario_builder(FuzzedDataProvider& fdp) : _fdp(fdp), _checker("fuzz.rmap") {}

  std::string build() {
    add("spawn P0");
    for (int i = 0; i < MAX_STATEMENTS && _fdp.remaining_bytes() > 0; ++i) add(propose());
    add("check end");
    return _text;
  }

 private:
  std::string proc() { return fmt::format("P{}", _fdp.ConsumeIntegralInRange(0, 3)); }
  std::string region() { return fmt::format("R{}", _fdp.ConsumeIntegralInRange(0, 5)); }
  std::uint64_t pages() { return _fdp.ConsumeIntegralInRange<std::uint64_t>(1, 12); }

  std::string range() {
    auto r = region();
    switch (_fdp.ConsumeIntegralInRange(0, 2)) {
      case 0: return r;
      case 1: return fmt::format("{}[{}]", r, _fdp.ConsumeIntegralInRange(0, 11));
      default: {
        auto first = _fdp.ConsumeIntegralInRange(0, 11);
        return fmt::format("{}[{}:{}]", r, first, first + _fdp.ConsumeIntegralInRange(1, 12));
      }
    }
  }

  template <std::size_t N>
  const char* one_of(const char* const (&choices)[N]) {
    return choices[_fdp.ConsumeIntegralInRange<std::size_t>(0, N - 1)];
  }

  std::string propose() {
    static const char* const prots[] = {"rw", "r", "none"};
    static const char* const advice[] = {"dontneed",   "pageout",    "dontfork",  "dofork",
                                         "wipeonfork", "keeponfork", "mergeable", "unmergeable"};
    static const char* const kinds[] = {"anon private", "anon shared", "file F0 private", "file F0 shared",
                                        "file F1 private"};
    switch (_fdp.ConsumeIntegralInRange(0, 15)) {
      case 0: return fmt::format("spawn {}", proc());
      case 1: return fmt::format("file F{} pages={}", _fdp.ConsumeIntegralInRange(0, 1), pages());
      case 2: {
        auto p = proc();
        auto r = region();
        auto kind = one_of(kinds);
        auto n = pages();
        auto offset = std::string_view(kind).starts_with("file")
                          ? fmt::format(" offset={}", _fdp.ConsumeIntegralInRange(0, 4))
                          : std::string{};
        return fmt::format("{}: mmap {} {} pages={}{} prot={}", p, r, kind, n, offset, one_of(prots));
      }
      case 3: return fmt::format("{}: read {}", proc(), range());
      case 4: return fmt::format("{}: write {} value={}", proc(), range(), _fdp.ConsumeIntegralInRange(0, 3));
      case 5: return fmt::format("{}: fork {}", proc(), proc());
      case 6: return fmt::format("{}: exit", proc());
      case 7: return fmt::format("{}: munmap {}", proc(), range());
      case 8: return fmt::format("{}: mprotect {} {}", proc(), range(), one_of(prots));
      case 9: return fmt::format("{}: mremap {} pages={}", proc(), region(), pages());
      case 10: return fmt::format("{}: mremap {} move", proc(), region());
      case 11: return fmt::format("{}: madvise {} {}", proc(), range(), one_of(advice));
      case 12: return fmt::format("{}: mlock {}", proc(), range());
      case 13: return fmt::format("{}: munlock {}", proc(), range());
      case 14: return _fdp.ConsumeBool() ? "ksm" : "reclaim";
      default: return fmt::format("check c{}", _checks++);
    }
  }

  void add(const std::string& stmt) {
    auto parsed = sc::parse(stmt, "fuzz.rmap");
    if (!parsed || parsed->statements.size() != 1) {
      std::cerr << "the builder wrote a malformed statement: " << stmt << '\n';
      std::abort();
    }
    if (!_checker.add(parsed->statements.front())) return;
    _text += stmt;
    _text += '\n';
  }

  FuzzedDataProvider& _fdp;
  sc::statement_checker _checker;
  std::string _text;
  unsigned _checks = 0;
};

struct outcome {
  int code;
  std::string out, err;
};

outcome run(const sc::program& prog, std::string_view design) {
  rmapkit::model::run_options opts;
  opts.check_invariants = true;
  opts.design = std::string(design);
  std::ostringstream out, err;
  int code = rmapkit::model::run(prog, out, err, opts);
  return {code, out.str(), err.str()};
}

[[noreturn]] void fail(const std::string& text, const std::string& why) {
  std::cerr << "scenario:\n" << text << why << '\n';
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider fdp(data, size);
  static const auto designs = rmapkit::mm::rmap_design_combinations();  // anonymous and file designs
  const auto& other = designs[fdp.ConsumeIntegralInRange<std::size_t>(0, designs.size() - 1)];
  const auto text = scenario_builder(fdp).build();
  auto parsed = sc::parse(text, "fuzz.rmap");
  if (!parsed) fail(text, "does not parse: " + parsed.error().str());
  // What statement_checker kept one statement at a time, resolve() keeps as a whole.
  auto prog = sc::resolve(*parsed);
  if (!prog) fail(text, "does not resolve: " + prog.error().str());
  const auto first = run(*prog, "linux-6");
  if (first.code == rmapkit::model::EXIT_MODEL_BUG) fail(text, "linux-6: " + first.err);
  const auto second = run(*prog, other);
  if (second.code != first.code || second.out != first.out || second.err != first.err)
    fail(text, fmt::format("{} differs from linux-6:\n{}{}\nlinux-6:\n{}{}", other, second.out, second.err, first.out,
                           first.err));
  return 0;
}
