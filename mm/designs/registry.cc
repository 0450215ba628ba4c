// The design lab's one list of designs: `--design NAME`, `rmapkit compare` and the tests
// find every design here. Adding a design is a new file in this directory (its anon_rmap
// or file_rmap and factory, declared in support.h) and one row below.
#include <algorithm>
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

struct file_design {
  std::string_view name;
  std::unique_ptr<file_rmap> (*make)(machine& m);
};

// The default first, then the older ones, newest first.
// clang-format off
constexpr std::array file_registry{
    file_design{"interval-tree", make_interval_tree_file_rmap},
    file_design{"prio-tree",     make_prio_tree_file_rmap},
    file_design{"list",          make_list_file_rmap},
};
// clang-format on

template <typename Rows>
constexpr auto names_of(const Rows& rows) {
  std::array<std::string_view, std::tuple_size_v<Rows>> names;
  for (std::size_t i = 0; i < rows.size(); ++i) names[i] = rows[i].name;
  return names;
}

constexpr auto design_names = names_of(registry);
constexpr auto file_design_names = names_of(file_registry);
// KSM's are not objects of their own: the stable tree takes a limit (ksm.cc).
constexpr std::array<std::string_view, 2> ksm_design_names{"ksm-chains", "ksm-flat"};

std::string known(std::span<const std::string_view> names) {
  std::string s;
  for (auto d : names) s += fmt::format("{}{}", s.empty() ? "" : ", ", d);
  return s;
}

}  // namespace

std::span<const std::string_view> anon_rmap_designs() { return design_names; }
std::span<const std::string_view> file_rmap_designs() { return file_design_names; }

std::unique_ptr<anon_rmap> make_anon_rmap(std::string_view name, machine& m) {
  for (const auto& d : registry)
    if (d.name == name) return d.make(m);
  throw std::invalid_argument(fmt::format("unknown rmap design '{}' (known: {})", name, known(design_names)));
}

std::unique_ptr<file_rmap> make_file_rmap(std::string_view name, machine& m) {
  for (const auto& d : file_registry)
    if (d.name == name) return d.make(m);
  throw std::invalid_argument(fmt::format("unknown file rmap design '{}' (known: {})", name, known(file_design_names)));
}

std::span<const std::string_view> ksm_rmap_designs() { return ksm_design_names; }

std::string rmap_design_name::full() const {
  std::string s = anon;
  if (file != file_design_names[0]) s += "+" + file;
  if (ksm != ksm_design_names[0]) s += "+" + ksm;
  return s;
}

rmap_design_name parse_design(std::string_view name) {
  auto is_one_of = [](const auto& names, std::string_view n) {
    return std::find(names.begin(), names.end(), n) != names.end();
  };
  const auto plus = name.find('+');
  rmap_design_name d{std::string(name.substr(0, plus)), std::string(file_design_names[0]),
                     std::string(ksm_design_names[0])};
  if (!is_one_of(design_names, d.anon))
    throw std::invalid_argument(
        fmt::format("unknown rmap design '{}' (known: {}; add +FILE for a file design: {}; +KSM for a KSM design: {})",
                    name, known(design_names), known(file_design_names), known(ksm_design_names)));
  bool file = false, ksm = false;
  for (auto rest = plus == std::string_view::npos ? std::string_view{} : name.substr(plus + 1); !rest.empty();) {
    const auto next = rest.find('+');
    const auto part = rest.substr(0, next);
    rest = next == std::string_view::npos ? std::string_view{} : rest.substr(next + 1);
    if (is_one_of(file_design_names, part) && !file) {
      d.file = std::string(part);
      file = true;
    } else if (is_one_of(ksm_design_names, part) && !ksm) {
      d.ksm = std::string(part);
      ksm = true;
    } else {
      throw std::invalid_argument(
          fmt::format("unknown or repeated design part '{}' in '{}' (file designs: {}; KSM "
                      "designs: {})",
                      part, name, known(file_design_names), known(ksm_design_names)));
    }
  }
  return d;
}

std::vector<std::string> rmap_design_combinations() {
  std::vector<std::string> all;
  for (auto f : file_design_names)
    for (auto a : design_names) all.push_back(rmap_design_name{std::string(a), std::string(f)}.full());
  return all;
}

}  // namespace rmapkit::mm
