#include "rmapkit/scenario/report.h"

#include <fmt/format.h>

#include "first_seen.h"

namespace rmapkit::scenario {

using detail::first_seen;

std::string format(const report_block& block) {
  fmt::memory_buffer out;
  auto it = std::back_inserter(out);
  if (block.label.empty()) fmt::format_to(it, "check\n");
  else fmt::format_to(it, "check {}\n", block.label);
  first_seen frames, swaps, folios;
  for (const auto& reg : block.regions) {
    for (const auto& v : reg.vmas)
      fmt::format_to(it, "vma {} {} {} {} {} {}\n", reg.process, reg.region, v.start, v.end, v.perms, v.kind);
    for (const auto& pg : reg.pages) {
      fmt::format_to(it, "page {} {} {} ", reg.process, reg.region, pg.index);
      switch (pg.state) {
        case report_page::state::zero: out.append(std::string_view(pg.pmd ? "zero pmd" : "zero")); break;
        case report_page::state::swap: fmt::format_to(it, "swap={}", swaps(pg.id)); break;
        case report_page::state::frame:
          fmt::format_to(it, "frame={} count={}", frames(pg.id), pg.count);
          if (has(pg.flags, page_flag::anon)) fmt::format_to(it, " anon");
          if (has(pg.flags, page_flag::ksm)) fmt::format_to(it, " ksm");
          if (has(pg.flags, page_flag::excl)) fmt::format_to(it, " excl");
          if (has(pg.flags, page_flag::swapcache)) fmt::format_to(it, " swapcache");
          // Version 2 fields, where the format puts them: absent without large folios, so
          // such a report is byte for byte a version 1 report.
          if (pg.pmd) fmt::format_to(it, " pmd");
          if (pg.folio)
            fmt::format_to(it, " folio={} order={} sub={}", folios(pg.folio->id), pg.folio->order, pg.folio->sub);
          if (pg.life)
            for (const auto& [f, name] : PAGE_LIFE_NAMES)
              if (*pg.life & bit(f)) fmt::format_to(it, " {}", name);
          break;
      }
      fmt::format_to(it, "\n");
    }
    for (const auto& v : reg.vmas) {
      if (!v.smaps) continue;
      fmt::format_to(it, "smaps {} {} {} {}\n", reg.process, reg.region, v.start, v.end);
      for (std::size_t i = 0; i < SMAPS_FIELDS.size(); ++i)
        out.append(format_smaps_field(SMAPS_FIELDS[i], (*v.smaps)[i]));
    }
  }
  fmt::format_to(it, "end\n");
  return fmt::to_string(out);
}

std::string format_smaps_field(std::string_view name, std::uint64_t kb) {
  // seq_put_decimal_ull_width(): the name and its colon in 16 columns, the number in 8.
  return fmt::format("{:<16}{:>8} kB\n", fmt::format("{}:", name), kb);
}

std::string format(int line, const ksm_counters& k) {
  return fmt::format(
      "ksm line {}: pages_shared={} pages_sharing={} pages_unshared={} pages_volatile={} stable_node_chains={} "
      "stable_node_dups={}\n",
      line, k.pages_shared, k.pages_sharing, k.pages_unshared, k.pages_volatile, k.stable_node_chains,
      k.stable_node_dups);
}

std::string format(const kmem_counts& k) {
  return fmt::format("kmem: anon_vma allocated={} freed={} anon_vma_chain allocated={} freed={}\n", k.anon_vma_alloc,
                     k.anon_vma_free, k.avc_alloc, k.avc_free);
}

}  // namespace rmapkit::scenario
