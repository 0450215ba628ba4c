// rmapkit compare: the design lab's comparison (lab/compare.cc) as a table or as JSON.
#include "compare.h"

#include <algorithm>
#include <chrono>
#include <iostream>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "progress.h"
#include "rmapkit/lab/json.h"

namespace rmapkit::tool {

namespace {

namespace sc = rmapkit::scenario;
using lab::design_run;

std::string per_mapping(const design_run& r) {
  auto b = r.bytes_per_mapping();
  return b ? fmt::format("{:.1f}", *b) : std::string("-");
}

/// Each lock class some design took: acquisitions / work under them / the longest hold /
/// the hottest lock's work (its acquisitions).
template <typename Row>
void print_locks(const std::vector<design_run>& runs, Row& row, std::ostream& out) {
  out << "locks: acquisitions / work under them / longest hold / the busiest lock's work (its acquisitions)\n";
  for (std::size_t c = 0; c < mm::RMAP_LOCK_CLASSES; ++c) {
    if (std::none_of(runs.begin(), runs.end(), [&](const design_run& r) { return r.locks[c].acquisitions > 0; }))
      continue;
    row(fmt::format("  {}", mm::to_string(static_cast<mm::rmap_lock_class>(c))),
        [&](const design_run& r) -> std::string {
          const auto& l = r.locks[c];
          if (l.acquisitions == 0) return "-";
          return fmt::format("{}/{}/{}/{}({})", l.acquisitions, l.work, l.longest, l.hottest_work,
                             l.hottest_acquisitions);
        });
  }
}

void print_text(const sc::program& prog, const std::vector<design_run>& runs, std::ostream& out) {
  constexpr int label = 40;
  std::size_t col = 13;  // wide enough for every design's name and a gap
  for (const auto& r : runs) col = std::max(col, r.design.size() + 2);
  auto row = [&](const std::string& name, auto&& cell) {
    std::string line = fmt::format("{:<{}}", name, label);
    for (const auto& r : runs) line += fmt::format("{:>{}}", " " + std::string(cell(r)), col);  // a gap, always
    out << line << '\n';
  };
  out << fmt::format("rmapkit compare {}: {} statements, the same reports under {} designs\n\n", prog.file,
                     prog.ops.size(), runs.size());
  row("", [](const design_run& r) { return r.design; });
  std::vector<std::string> types;
  for (const auto& r : runs)
    for (const auto& o : r.objects)
      if (std::find(types.begin(), types.end(), o.type) == types.end()) types.push_back(o.type);
  out << "objects: allocated/peak live, and bytes each\n";
  for (const auto& type : types) {
    row("  " + type, [&](const design_run& r) -> std::string {
      auto* o = r.object(type);
      return o ? fmt::format("{}/{}", o->allocated, o->peak) : "-";
    });
    row("    bytes each", [&](const design_run& r) -> std::string {
      auto* o = r.object(type);
      return o ? std::to_string(o->bytes) : "-";
    });
  }
  row("  bytes per frame (struct page)", [](const design_run& r) { return std::to_string(r.per_frame_bytes); });
  out << "rmap metadata at its peak\n";
  row("  bytes", [](const design_run& r) { return std::to_string(r.peak_bytes); });
  row("  anonymous mappings then", [](const design_run& r) { return std::to_string(r.peak_mappings); });
  row("  bytes per mapping", per_mapping);
  out << "rmap walks\n";
  row("  walks", [](const design_run& r) { return std::to_string(r.walks.walks); });
  row("  entries examined", [](const design_run& r) { return std::to_string(r.walks.entries); });
  row("  VMAs visited (rmap_one)", [](const design_run& r) { return std::to_string(r.walks.vmas_visited); });
  row("  PTEs examined", [](const design_run& r) { return std::to_string(r.walks.ptes_examined); });
  row("  visits that missed", [](const design_run& r) { return std::to_string(r.walks.misses); });
  row("  entries read to map/unmap", [](const design_run& r) { return std::to_string(r.walks.upkeep); });
  row("  entries per walk", [](const design_run& r) {
    auto e = r.entries_per_walk();
    return e ? fmt::format("{:.2f}", *e) : std::string("-");
  });
  print_locks(runs, row, out);
  out << "per statement kind: time (us, median) / objects allocated / walk entries / map-unmap entries\n";
  std::set<std::string> kinds;
  for (const auto& r : runs)
    for (const auto& [k, c] : r.kinds) kinds.insert(k);
  for (const auto& k : kinds) {
    const auto n = runs.front().kinds.count(k) ? runs.front().kinds.at(k).count : 0;
    row(fmt::format("  {} ({})", k, n), [&](const design_run& r) -> std::string {
      auto it = r.kinds.find(k);
      if (it == r.kinds.end()) return "-";
      return fmt::format("{:.0f}/{}/{}/{}", std::chrono::duration<double, std::micro>(it->second.time).count(),
                         it->second.allocated, it->second.entries, it->second.upkeep);
    });
  }
  const auto us = [](std::chrono::nanoseconds t) {
    return fmt::format("{:.0f}", std::chrono::duration<double, std::micro>(t).count());
  };
  row(fmt::format("  total time (us), median of {}", runs.front().totals.size()),
      [&](const design_run& r) { return us(r.total); });
  row("    fastest run", [&](const design_run& r) { return us(*std::ranges::min_element(r.totals)); });
  row("    slowest run", [&](const design_run& r) { return us(*std::ranges::max_element(r.totals)); });
}

void print_kernel(const sc::kmem_counts& k, const std::optional<sc::kmem_counts>& model, std::ostream& out) {
  auto cell = [](std::uint64_t a, std::uint64_t f) { return fmt::format("{}/{}", a, f); };
  out << fmt::format("\nkernel (kmem tracepoints, the skeleton's subtracted): allocated/freed\n");
  out << fmt::format("{:<40}{:>13}{:>13}\n", "", "kernel", "linux-6");
  out << fmt::format("{:<40}{:>13}{:>13}\n", "  anon_vma", cell(k.anon_vma_alloc, k.anon_vma_free),
                     model ? cell(model->anon_vma_alloc, model->anon_vma_free) : "-");
  out << fmt::format("{:<40}{:>13}{:>13}\n", "  anon_vma_chain", cell(k.avc_alloc, k.avc_free),
                     model ? cell(model->avc_alloc, model->avc_free) : "-");
  if (model)
    out << (*model == k ? "the linux-6 design allocates what the kernel allocates\n"
                        : "the linux-6 design and the kernel DIFFER\n");
}

}  // namespace

int cmd_compare(const sc::program& prog, const lab::compare_options& opts, bool json, std::ostream& out,
                std::ostream& err) {
  const auto res = [&] {
    progress_bar bar("compare", 0, std::cerr, is_terminal_stderr());
    auto o = opts;
    o.on_progress = [&](std::size_t done, std::size_t total) { bar.update(done, total); };
    return lab::compare(prog, o);
  }();
  // The model's linux-6 design must allocate what the kernel allocates.
  const auto agrees = res.kernel_agrees();
  const int status = res.exit_code != 0 ? res.exit_code : (agrees && !*agrees ? 1 : 0);
  if (json) {
    out << sc::dump(lab::compare_document(prog, res));
    return status;
  }
  if (res.kernel_unavailable) {
    err << "rmapkit compare --vs-kernel: " << *res.kernel_unavailable << '\n';
    return res.exit_code;
  }
  err << res.errors;
  if (res.exit_code != 0) return res.exit_code;
  print_text(prog, res.designs, out);
  const design_run* linux6 = res.find("linux-6");
  if (res.kernel) print_kernel(*res.kernel, linux6 ? std::optional{lab::model_counts(*linux6)} : std::nullopt, out);
  return status;
}

}  // namespace rmapkit::tool
