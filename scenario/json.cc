// The scenario layer's JSON (docs/json.md): field names are the kernel's (mapcount, the
// KSM counters' sysfs names), as the text report's are.
#include "rmapkit/scenario/json.h"

#include <charconv>
#include <cstdint>
#include <optional>
#include <utility>

#include "first_seen.h"

namespace rmapkit::scenario {

namespace {

using detail::first_seen;

nlohmann::json flags_json(std::uint8_t flags) {
  auto out = nlohmann::json::array();
  // The order the text report prints them in.
  for (auto [f, name] : {std::pair{page_flag::anon, "anon"}, std::pair{page_flag::ksm, "ksm"},
                         std::pair{page_flag::excl, "excl"}, std::pair{page_flag::swapcache, "swapcache"}})
    if (has(flags, f)) out.push_back(name);
  return out;
}

nlohmann::json page_json(const report_page& pg, first_seen& frames, first_seen& swaps, first_seen& folios) {
  nlohmann::json j{{"index", pg.index}};
  switch (pg.state) {
    case report_page::state::zero:
      j["state"] = "zero";
      if (pg.pmd) j["pmd"] = true;
      break;
    case report_page::state::swap:
      j["state"] = "swap";
      j["swap"] = swaps(pg.id);
      break;
    case report_page::state::frame:
      j["state"] = "frame";
      j["frame"] = frames(pg.id);
      j["mapcount"] = pg.count;
      j["flags"] = flags_json(pg.flags);
      if (pg.pmd) j["pmd"] = true;
      if (pg.folio) j["folio"] = {{"id", folios(pg.folio->id)}, {"order", pg.folio->order}, {"sub", pg.folio->sub}};
      if (pg.life) {
        auto& life = j["page_flags"] = nlohmann::json::array();
        for (const auto& [f, name] : PAGE_LIFE_NAMES)
          if (*pg.life & bit(f)) life.push_back(name);
      }
      break;
  }
  return j;
}

/// The line number of `FILE:LINE: ` at the start of @rest (what follows FILE:), and where
/// the reason starts; nothing when @rest does not start with digits and ": ".
std::optional<std::pair<int, std::size_t>> line_prefix(std::string_view rest) {
  int line = 0;
  auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), line);
  if (ec != std::errc{} || end == rest.data() || line <= 0) return std::nullopt;
  std::size_t at = static_cast<std::size_t>(end - rest.data());
  if (rest.substr(at, 2) != ": ") return std::nullopt;
  return std::pair{line, at + 2};
}

diag parse_diag(std::string_view text, std::string_view file) {
  if (!file.empty() && text.starts_with(file) && text.size() > file.size() && text[file.size()] == ':') {
    auto rest = text.substr(file.size() + 1);
    if (auto l = line_prefix(rest)) return {std::string(file), l->first, std::string(rest.substr(l->second))};
    if (rest.starts_with(' ')) return {std::string(file), 0, std::string(rest.substr(1))};
  }
  return {std::string(file), 0, std::string(text)};
}

}  // namespace

nlohmann::json envelope(std::string_view kind) {
  return {{"format", "rmapkit"}, {"version", JSON_FORMAT_VERSION}, {"kind", kind}};
}

std::string dump(const nlohmann::json& doc) {
  return doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + '\n';
}

nlohmann::json to_json(const report_block& block) {
  first_seen frames, swaps, folios;  // one numbering per block, as in the text
  auto regions = nlohmann::json::array();
  for (const auto& reg : block.regions) {
    auto vmas = nlohmann::json::array();
    for (const auto& v : reg.vmas) {
      nlohmann::json j{{"start", v.start}, {"end", v.end}, {"perms", v.perms}, {"kind", v.kind}};
      if (v.smaps) {
        auto& sm = j["smaps_kb"] = nlohmann::json::object();
        for (std::size_t i = 0; i < SMAPS_FIELDS.size(); ++i) sm[std::string(SMAPS_FIELDS[i])] = (*v.smaps)[i];
      }
      vmas.push_back(std::move(j));
    }
    auto pages = nlohmann::json::array();
    for (const auto& pg : reg.pages) pages.push_back(page_json(pg, frames, swaps, folios));
    regions.push_back({{"process", reg.process}, {"region", reg.region}, {"vmas", vmas}, {"pages", pages}});
  }
  return {{"label", block.label}, {"regions", regions}};
}

nlohmann::json to_json(const diag& d) { return {{"file", d.file}, {"line", d.line}, {"reason", d.message}}; }

nlohmann::json to_json(std::span<const diag> diags) {
  auto out = nlohmann::json::array();
  for (const auto& d : diags) out.push_back(to_json(d));
  return out;
}

nlohmann::json to_json(int line, const ksm_counters& k) {
  return {{"line", line},
          {"pages_shared", k.pages_shared},
          {"pages_sharing", k.pages_sharing},
          {"pages_unshared", k.pages_unshared},
          {"pages_volatile", k.pages_volatile},
          {"stable_node_chains", k.stable_node_chains},
          {"stable_node_dups", k.stable_node_dups}};
}

nlohmann::json to_json(const kmem_counts& k) {
  return {{"anon_vma", {{"allocated", k.anon_vma_alloc}, {"freed", k.anon_vma_free}}},
          {"anon_vma_chain", {{"allocated", k.avc_alloc}, {"freed", k.avc_free}}}};
}

std::vector<diag> parse_diags(std::string_view text, std::string_view file) {
  std::vector<diag> out;
  while (!text.empty()) {
    auto nl = text.find('\n');
    auto line = text.substr(0, nl);
    if (!line.empty()) out.push_back(parse_diag(line, file));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return out;
}

nlohmann::json error_document(std::string_view command, std::string_view file, std::span<const diag> errors) {
  auto j = envelope("error");
  j["command"] = command;
  j["scenario"] = file;
  j["errors"] = to_json(errors);
  return j;
}

nlohmann::json lint_document(std::string_view file, const program* prog, std::span<const diag> errors) {
  auto j = envelope("lint");
  j["scenario"] = file;
  if (prog) {
    j["statements"] = prog->ops.size();
    j["processes"] = prog->process_names.size();
    j["files"] = prog->file_names.size();
    j["machine_wide"] = prog->needs_machine_lock;
  }
  j["errors"] = to_json(errors);
  return j;
}

}  // namespace rmapkit::scenario
