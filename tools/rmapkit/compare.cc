// rmapkit compare. Each design runs the scenario on a fresh machine; after every statement
// the runner's hook charges the statement's wall time, the objects the design allocated
// during it and the rmap entries its walks examined to the statement's kind, and tracks
// the design's peak metadata (its objects plus its per-frame bytes) and the anonymous
// mappings at that peak.
#include "compare.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "rmapkit/kcheck/kernel.h"
#include "rmapkit/model/model.h"

namespace rmapkit::tool {

namespace {

namespace sc = rmapkit::scenario;
using ns = std::chrono::nanoseconds;

struct kind_cost {
  std::uint64_t count = 0;
  ns time{0};
  std::uint64_t allocated = 0;  ///< design objects allocated
  std::uint64_t entries = 0;    ///< rmap entries examined by walks
  std::uint64_t upkeep = 0;     ///< entries read to add or remove mappings
};

struct design_run {
  std::string design;
  int exit_code = 0;
  std::string report, errors;
  std::vector<mm::rmap_object_count> objects;
  mm::walk_stats walks;
  std::size_t per_frame_bytes = 0;
  std::uint64_t peak_bytes = 0, peak_frames = 0, peak_mappings = 0;
  std::map<std::string, kind_cost, std::less<>> kinds;
  ns total{0};
};

std::uint64_t allocated(const std::vector<mm::rmap_object_count>& objs) {
  std::uint64_t n = 0;
  for (const auto& o : objs) n += o.allocated;
  return n;
}

std::uint64_t live_bytes(const std::vector<mm::rmap_object_count>& objs) {
  std::uint64_t n = 0;
  for (const auto& o : objs) n += o.live() * o.bytes;
  return n;
}

design_run run_design(const sc::program& prog, const std::string& design) {
  design_run r;
  r.design = design;
  mm::machine m(design);
  const auto& rmap = m.anon_rmap_design();
  r.per_frame_bytes = rmap.per_frame_bytes();
  std::uint64_t last_alloc = 0, last_entries = 0, last_upkeep = 0;
  model::run_options opts;
  opts.check_invariants = false;
  opts.design = design;
  opts.on_statement = [&](const sc::op& o, ns t) {
    auto objs = rmap.objects();
    const auto fp = m.anon_footprint();
    const std::uint64_t bytes = live_bytes(objs) + r.per_frame_bytes * fp.frames;
    // At the peak; of equal peaks, the one with the most mappings (the bytes served most).
    if (bytes > r.peak_bytes || (bytes == r.peak_bytes && fp.mappings > r.peak_mappings)) {
      r.peak_bytes = bytes;
      r.peak_frames = fp.frames;
      r.peak_mappings = fp.mappings;
    }
    auto& k = r.kinds[std::string(sc::statement_kind(o))];
    k.count++;
    k.time += t;
    k.allocated += allocated(objs) - last_alloc;
    k.entries += m.stats().entries - last_entries;
    k.upkeep += m.stats().upkeep - last_upkeep;
    last_alloc = allocated(objs);
    last_entries = m.stats().entries;
    last_upkeep = m.stats().upkeep;
    r.total += t;
  };
  std::ostringstream out, err;
  r.exit_code = model::run_on(m, prog, out, err, opts);
  r.report = out.str();
  r.errors = err.str();
  r.objects = rmap.objects();  // after teardown: allocated, freed and peak are final
  r.walks = m.stats();
  return r;
}

/// The same processes doing nothing: spawns, forks and exits only.
sc::program skeleton(const sc::program& prog) {
  sc::program s = prog;
  std::erase_if(s.ops, [](const sc::op& o) {
    auto k = sc::statement_kind(o);
    return k != "spawn" && k != "fork" && k != "exit";
  });
  s.needs_machine_lock = s.needs_swap = s.needs_reclaim = s.needs_ksm = false;
  return s;
}

/// The scenario's own anon_vma/AVC allocations on the kernel: its run minus its skeleton's.
std::optional<sc::kmem_counts> kernel_counts(const sc::program& prog, std::ostream& err) {
  auto count = [&](const sc::program& p) -> std::optional<sc::kmem_counts> {
    std::optional<sc::kmem_counts> got;
    kcheck::run_options k;
    k.kmem_counts = true;
    k.on_kmem_counts = [&](const sc::kmem_counts& c) { got = c; };
    std::ostringstream out;
    auto r = kcheck::run(p, out, err, k);
    if (r.exit_code != 0) return std::nullopt;
    if (!got) err << p.file << ": the kernel run printed no kmem counts\n";
    return got;
  };
  auto full = count(prog);
  if (!full) return std::nullopt;
  auto base = count(skeleton(prog));
  if (!base) return std::nullopt;
  if (full->anon_vma_alloc < base->anon_vma_alloc || full->anon_vma_free < base->anon_vma_free ||
      full->avc_alloc < base->avc_alloc || full->avc_free < base->avc_free) {
    err << fmt::format("{}: the kernel counted more for the skeleton than for the scenario ({} against {}): the "
                       "runner's own allocations did not cancel out\n",
                       prog.file, sc::format(*base).substr(0, sc::format(*base).size() - 1),
                       sc::format(*full).substr(0, sc::format(*full).size() - 1));
    return std::nullopt;
  }
  return *full - *base;
}

sc::kmem_counts model_counts(const design_run& r) {
  sc::kmem_counts k;
  for (const auto& o : r.objects) {
    if (o.type == "anon_vma") k.anon_vma_alloc = o.allocated, k.anon_vma_free = o.freed;
    if (o.type == "anon_vma_chain") k.avc_alloc = o.allocated, k.avc_free = o.freed;
  }
  return k;
}

std::string per_mapping(const design_run& r) {
  if (r.peak_mappings == 0) return "-";
  return fmt::format("{:.1f}", static_cast<double>(r.peak_bytes) / static_cast<double>(r.peak_mappings));
}

void print_text(const sc::program& prog, const std::vector<design_run>& runs, std::ostream& out) {
  constexpr int label = 40, col = 13;
  auto row = [&](const std::string& name, auto&& cell) {
    std::string line = fmt::format("{:<{}}", name, label);
    for (const auto& r : runs) line += fmt::format("{:>{}}", cell(r), col);
    out << line << '\n';
  };
  out << fmt::format("rmapkit compare {}: {} statements, the same reports under {} designs\n\n", prog.file,
                     prog.ops.size(), runs.size());
  row("", [](const design_run& r) { return r.design; });
  std::vector<std::string> types;
  for (const auto& r : runs)
    for (const auto& o : r.objects)
      if (std::find(types.begin(), types.end(), o.type) == types.end()) types.push_back(o.type);
  auto object = [](const design_run& r, const std::string& type) -> const mm::rmap_object_count* {
    for (const auto& o : r.objects)
      if (o.type == type) return &o;
    return nullptr;
  };
  out << "objects: allocated/peak live, and bytes each\n";
  for (const auto& type : types) {
    row("  " + type, [&](const design_run& r) -> std::string {
      auto* o = object(r, type);
      return o ? fmt::format("{}/{}", o->allocated, o->peak) : "-";
    });
    row("    bytes each", [&](const design_run& r) -> std::string {
      auto* o = object(r, type);
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
    return r.walks.walks ? fmt::format("{:.2f}", static_cast<double>(r.walks.entries) / static_cast<double>(r.walks.walks))
                         : std::string("-");
  });
  out << "per statement kind: time (us) / objects allocated / walk entries / map-unmap entries\n";
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
  row("  total time (us)", [](const design_run& r) {
    return fmt::format("{:.0f}", std::chrono::duration<double, std::micro>(r.total).count());
  });
}

void print_kernel(const sc::kmem_counts& k, const std::optional<sc::kmem_counts>& model, std::ostream& out) {
  auto cell = [](std::uint64_t a, std::uint64_t f) { return fmt::format("{}/{}", a, f); };
  out << fmt::format("\nkernel (kmem tracepoints, the skeleton's subtracted): allocated/freed\n");
  out << fmt::format("{:<40}{:>13}{:>13}\n", "", "kernel", "linux-6");
  out << fmt::format("{:<40}{:>13}{:>13}\n", "  anon_vma", cell(k.anon_vma_alloc, k.anon_vma_free),
                     model ? cell(model->anon_vma_alloc, model->anon_vma_free) : "-");
  out << fmt::format("{:<40}{:>13}{:>13}\n", "  anon_vma_chain", cell(k.avc_alloc, k.avc_free),
                     model ? cell(model->avc_alloc, model->avc_free) : "-");
  if (model) out << (*model == k ? "the linux-6 design allocates what the kernel allocates\n"
                                 : "the linux-6 design and the kernel DIFFER\n");
}

void print_json(const sc::program& prog, const std::vector<design_run>& runs,
                const std::optional<sc::kmem_counts>& kernel, std::ostream& out) {
  nlohmann::json j;
  if (kernel)
    j["kernel"] = {{"anon_vma", {{"allocated", kernel->anon_vma_alloc}, {"freed", kernel->anon_vma_free}}},
                   {"anon_vma_chain", {{"allocated", kernel->avc_alloc}, {"freed", kernel->avc_free}}}};
  j["scenario"] = prog.file;
  j["statements"] = prog.ops.size();
  for (const auto& r : runs) {
    nlohmann::json d;
    d["design"] = r.design;
    for (const auto& o : r.objects)
      d["objects"].push_back({{"type", o.type}, {"bytes", o.bytes}, {"allocated", o.allocated}, {"freed", o.freed},
                              {"peak", o.peak}});
    d["per_frame_bytes"] = r.per_frame_bytes;
    d["peak"] = {{"bytes", r.peak_bytes}, {"anon_frames", r.peak_frames}, {"anon_mappings", r.peak_mappings}};
    d["walks"] = {{"walks", r.walks.walks},
                  {"entries", r.walks.entries},
                  {"vmas_visited", r.walks.vmas_visited},
                  {"ptes_examined", r.walks.ptes_examined},
                  {"misses", r.walks.misses},
                  {"upkeep", r.walks.upkeep}};
    for (const auto& [k, c] : r.kinds)
      d["statements"][k] = {{"count", c.count},
                            {"ns", c.time.count()},
                            {"allocated", c.allocated},
                            {"entries", c.entries},
                            {"upkeep", c.upkeep}};
    d["total_ns"] = r.total.count();
    j["designs"].push_back(std::move(d));
  }
  out << j.dump(2) << '\n';
}

}  // namespace

int cmd_compare(const sc::program& prog, const compare_options& opts, std::ostream& out, std::ostream& err) {
  std::vector<std::string> designs = opts.designs;
  if (designs.empty())
    for (auto d : mm::anon_rmap_designs()) designs.emplace_back(d);
  std::vector<design_run> runs;
  // A first, unmeasured run warms the caches and the allocator, so that the first
  // design's times are not those of a cold process.
  (void)run_design(prog, designs.front());
  for (const auto& d : designs) {
    runs.push_back(run_design(prog, d));
    const auto& r = runs.back();
    if (r.exit_code != 0) {
      err << r.errors;
      return r.exit_code;
    }
    if (r.report != runs.front().report) {
      err << fmt::format("{}: designs {} and {} print different reports: a bug of the model\n", prog.file,
                         runs.front().design, r.design);
      return model::EXIT_MODEL_BUG;
    }
  }
  std::optional<sc::kmem_counts> kernel;
  if (opts.vs_kernel) {
    if (auto why = kcheck::missing_privileges()) {
      err << "rmapkit compare --vs-kernel: " << *why << '\n';
      return sc::EXIT_SCENARIO_ERROR;
    }
    kernel = kernel_counts(prog, err);
    if (!kernel) return sc::EXIT_SCENARIO_ERROR;
  }
  const design_run* linux6 = nullptr;
  for (const auto& r : runs)
    if (r.design == "linux-6") linux6 = &r;
  if (opts.json) {
    print_json(prog, runs, kernel, out);
  } else {
    print_text(prog, runs, out);
    if (kernel) print_kernel(*kernel, linux6 ? std::optional{model_counts(*linux6)} : std::nullopt, out);
  }
  // The model's linux-6 design must allocate what the kernel allocates.
  if (kernel && linux6 && model_counts(*linux6) != *kernel) return 1;
  return 0;
}

}  // namespace rmapkit::tool
