// The design lab's one list of designs: `--design NAME`, `rmapkit compare` and the tests
// find every design here. Adding a design is a new file in this directory (its anon_rmap
// and factory, declared in support.h) and one row below.
#include <array>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "support.h"

namespace rmapkit::mm {

namespace {

struct design {
  std::string_view name;
  std::unique_ptr<anon_rmap> (*make)(machine& m);
};

// The default first; then Linux's older designs, newest first; then LegoOS. One row a design.
// clang-format off
constexpr std::array registry{
    design{"linux-6",      make_linux_6_anon_rmap},
    design{"linux-3.19",   make_linux_3_19_anon_rmap},
    design{"linux-2.6.34", make_linux_2_6_34_anon_rmap},
    design{"linux-2.6.7",  make_linux_2_6_7_anon_rmap},
    design{"pte-chain",    make_pte_chain_anon_rmap},
    design{"legoos",       make_legoos_anon_rmap},
};
// clang-format on

constexpr auto design_names = [] {
  std::array<std::string_view, registry.size()> names;
  for (std::size_t i = 0; i < registry.size(); ++i) names[i] = registry[i].name;
  return names;
}();

}  // namespace

std::span<const std::string_view> anon_rmap_designs() { return design_names; }

std::unique_ptr<anon_rmap> make_anon_rmap(std::string_view name, machine& m) {
  for (const auto& d : registry)
    if (d.name == name) return d.make(m);
  std::string known;
  for (auto d : design_names) known += fmt::format("{}{}", known.empty() ? "" : ", ", d);
  throw std::invalid_argument(fmt::format("unknown rmap design '{}' (known: {})", name, known));
}

}  // namespace rmapkit::mm
