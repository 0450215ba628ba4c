// libFuzzer target: any bytes through what `rmapkit lint` does (parse, resolve) and the
// `lint --json` document. Bad input must give a clear error, never a crash, a leak or
// undefined behaviour (fuzz/README.md).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "rmapkit/scenario/json.h"
#include "rmapkit/scenario/parser.h"
#include "rmapkit/scenario/program.h"

namespace sc = rmapkit::scenario;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<sc::diag> errors;
  std::optional<sc::program> prog;
  if (auto parsed = sc::parse(text, "fuzz.rmap"); !parsed) {
    errors.push_back(parsed.error());
  } else if (auto resolved = sc::resolve(*parsed); !resolved) {
    errors.push_back(resolved.error());
  } else {
    prog = std::move(*resolved);
    for (const auto& o : prog->ops) static_cast<void>(sc::statement_kind(o));
  }
  for (const auto& e : errors) static_cast<void>(e.str());
  static_cast<void>(sc::dump(sc::lint_document("fuzz.rmap", prog ? &*prog : nullptr, errors)));
  return 0;
}
