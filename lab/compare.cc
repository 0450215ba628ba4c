// The design lab's comparison. Each design runs the scenario on a fresh machine; after
// every statement the runner's hook charges the statement's wall time, the objects the
// design allocated during it and the rmap entries its walks examined to the statement's
// kind, and tracks the design's peak metadata (its objects plus its per-frame bytes) and
// the anonymous mappings at that peak.
#include "rmapkit/lab/compare.h"
#include "rmapkit/mm/anon_rmap.h"

#include <algorithm>
#include <optional>
#include <sstream>

#include <fmt/format.h>

#include "rmapkit/kcheck/kernel.h"
#include "rmapkit/model/model.h"

namespace rmapkit::lab {

namespace {

namespace sc = rmapkit::scenario;
using ns = std::chrono::nanoseconds;

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

/// run_options::before_statement of compare()'s run @run (the warm-up is run 0).
std::function<void(std::size_t)> progress_of(const sc::program& prog, const compare_options& opts, std::size_t designs,
                                             std::size_t run) {
  if (!opts.on_progress) return {};
  const std::size_t total = prog.ops.size() * (1 + designs * std::max(opts.repeat, 1U));
  return [&prog, &opts, run, total](std::size_t i) { opts.on_progress(run * prog.ops.size() + i, total); };
}

design_run run_design(const sc::program& prog, const std::string& design,
                      std::function<void(std::size_t)> progress = {}) {
  design_run r;
  r.design = design;
  mm::machine m(design);
  m.set_lock_accounting(true);
  const auto& rmap = m.anon_rmap_design();
  r.per_frame_bytes = rmap.per_frame_bytes();
  std::uint64_t last_alloc = 0, last_entries = 0, last_upkeep = 0;
  model::run_options opts;
  opts.check_invariants = false;
  opts.design = design;
  opts.before_statement = std::move(progress);
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
  r.objects = rmap.objects();                     // after teardown: allocated, freed and peak are final
  for (auto& o : m.file_rmap_design().objects())  // files, when the scenario mapped any
    if (o.allocated > 0) r.objects.push_back(std::move(o));
  r.walks = m.stats();
  r.locks = m.lock_stats();
  return r;
}

/// The kmem counts of @p on the kernel, or nothing (why is in @err).
std::optional<sc::kmem_counts> kernel_run_counts(const sc::program& p, const compare_options& opts, std::ostream& err) {
  std::optional<sc::kmem_counts> got;
  kcheck::run_options k;
  k.on_lock_wait = opts.on_lock_wait;
  k.kmem_counts = true;
  k.on_kmem_counts = [&](const sc::kmem_counts& c) { got = c; };
  std::ostringstream out;
  auto r = kcheck::run(p, out, err, k);
  if (r.exit_code != 0) return std::nullopt;
  if (!got) err << p.file << ": the kernel run printed no kmem counts\n";
  return got;
}

/// "kmem: ..." without its newline.
std::string one_line(const sc::kmem_counts& k) {
  auto s = sc::format(k);
  return s.substr(0, s.size() - 1);
}

/// The scenario's own anon_vma/AVC allocations on the kernel: its run minus its skeleton's.
std::optional<sc::kmem_counts> kernel_counts(const sc::program& prog, const compare_options& opts, std::ostream& err) {
  auto full = kernel_run_counts(prog, opts, err);
  if (!full) return std::nullopt;
  return kernel_scenario_share(*full, prog, opts, err);
}

ns median(std::vector<ns> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

/// Everything a run counts, without its times: equal in every run of one design.
bool same_counts(const design_run& a, const design_run& b) {
  auto counts = [](const design_run& r) {
    std::vector<std::uint64_t> v{r.peak_bytes,          r.peak_frames,   r.peak_mappings,
                                 r.walks.walks,         r.walks.entries, r.walks.vmas_visited,
                                 r.walks.ptes_examined, r.walks.misses,  r.walks.upkeep};
    for (const auto& o : r.objects) v.insert(v.end(), {o.allocated, o.freed, o.peak});
    for (const auto& [k, c] : r.kinds) v.insert(v.end(), {c.count, c.allocated, c.entries, c.upkeep});
    for (const auto& l : r.locks)
      v.insert(v.end(), {l.acquisitions, l.work, l.longest, l.hottest_work, l.hottest_acquisitions});
    return v;
  };
  return a.exit_code == b.exit_code && a.report == b.report && counts(a) == counts(b);
}

/// @repeat runs of @design folded into one: the first run's counts, the median times, every
/// run's total. Nothing when two runs counted differently (a bug of the model).
std::optional<design_run> run_repeated(const sc::program& prog, const std::string& design, const compare_options& opts,
                                       std::size_t designs, std::size_t first_run) {
  std::vector<design_run> runs;
  for (unsigned i = 0; i < std::max(opts.repeat, 1U); ++i) {
    runs.push_back(run_design(prog, design, progress_of(prog, opts, designs, first_run + i)));
    if (runs.back().exit_code != 0) return std::move(runs.back());  // failed: no more runs
    if (!same_counts(runs.front(), runs.back())) return std::nullopt;
  }
  design_run r = runs.front();
  for (const auto& run : runs) r.totals.push_back(run.total);
  r.total = median(r.totals);
  for (auto& [kind, cost] : r.kinds) {
    std::vector<ns> times;
    for (const auto& run : runs) times.push_back(run.kinds.at(kind).time);
    cost.time = median(times);
  }
  return r;
}

/// Runs every design in turn; false (with the result's errors set) at the first that
/// fails or prints another report than the first.
bool run_designs(const sc::program& prog, const std::vector<std::string>& designs, const compare_options& opts,
                 compare_result& res) {
  // A first, unmeasured run warms the caches and the allocator, so that the first
  // design's times are not those of a cold process.
  (void)run_design(prog, designs.front(), progress_of(prog, opts, designs.size(), 0));
  for (std::size_t n = 0; n < designs.size(); ++n) {
    const auto& d = designs[n];
    auto run = run_repeated(prog, d, opts, designs.size(), 1 + n * std::max(opts.repeat, 1U));
    if (!run) {
      res.exit_code = model::EXIT_MODEL_BUG;
      res.errors = fmt::format(
          "{}: design {} counted differently in two runs of the same scenario: a bug of the model\n", prog.file, d);
      return false;
    }
    res.designs.push_back(std::move(*run));
    const auto& r = res.designs.back();
    if (r.exit_code != 0) {
      res.exit_code = r.exit_code;
      res.errors = r.errors;
      return false;
    }
    // Results never depend on the design, except on KSM's: past max_page_sharing sharers
    // ksm-flat keeps one page where ksm-chains starts more. So each report is held against
    // the first one of the same KSM design.
    const auto ksm = mm::parse_design(r.design).ksm;
    const auto same_ksm = std::find_if(res.designs.begin(), res.designs.end(),
                                       [&](const design_run& o) { return mm::parse_design(o.design).ksm == ksm; });
    if (r.report != same_ksm->report) {
      res.exit_code = model::EXIT_MODEL_BUG;
      res.errors = fmt::format("{}: designs {} and {} print different reports: a bug of the model\n", prog.file,
                               same_ksm->design, r.design);
      return false;
    }
  }
  return true;
}

}  // namespace

std::optional<double> design_run::bytes_per_mapping() const {
  if (peak_mappings == 0) return std::nullopt;
  return static_cast<double>(peak_bytes) / static_cast<double>(peak_mappings);
}

std::optional<double> design_run::entries_per_walk() const {
  if (walks.walks == 0) return std::nullopt;
  return static_cast<double>(walks.entries) / static_cast<double>(walks.walks);
}

const mm::rmap_object_count* design_run::object(std::string_view type) const {
  for (const auto& o : objects)
    if (o.type == type) return &o;
  return nullptr;
}

const design_run* compare_result::find(std::string_view design) const {
  for (const auto& r : designs)
    if (r.design == design) return &r;
  return nullptr;
}

std::optional<bool> compare_result::kernel_agrees() const {
  const auto* linux6 = find("linux-6");
  if (!kernel || !linux6) return std::nullopt;
  return model_counts(*linux6) == *kernel;
}

sc::kmem_counts model_counts(const design_run& run) {
  sc::kmem_counts k;
  if (const auto* o = mm::find_object(run.objects, "anon_vma"))
    k.anon_vma_alloc = o->allocated, k.anon_vma_free = o->freed;
  if (const auto* o = mm::find_object(run.objects, "anon_vma_chain")) k.avc_alloc = o->allocated, k.avc_free = o->freed;
  return k;
}

sc::program skeleton(const sc::program& prog) {
  sc::program s = prog;
  std::erase_if(s.ops, [](const sc::op& o) {
    auto k = sc::statement_kind(o);
    return k != "spawn" && k != "fork" && k != "exit";
  });
  s.needs_machine_lock = s.needs_swap = s.needs_reclaim = s.needs_ksm = false;
  return s;
}

std::optional<sc::kmem_counts> kernel_scenario_share(const sc::kmem_counts& run, const sc::program& prog,
                                                     const compare_options& opts, std::ostream& err) {
  auto base = kernel_run_counts(skeleton(prog), opts, err);
  if (!base) return std::nullopt;
  if (run.anon_vma_alloc < base->anon_vma_alloc || run.anon_vma_free < base->anon_vma_free ||
      run.avc_alloc < base->avc_alloc || run.avc_free < base->avc_free) {
    err << fmt::format(
        "{}: the kernel counted more for the skeleton than for the scenario ({} against {}): the "
        "runner's own allocations did not cancel out\n",
        prog.file, one_line(*base), one_line(run));
    return std::nullopt;
  }
  return run - *base;
}

compare_result compare(const sc::program& prog, const compare_options& opts) {
  std::vector<std::string> designs = opts.designs;
  if (designs.empty())
    for (auto d : mm::anon_rmap_designs()) designs.emplace_back(d);
  if (!opts.file_designs.empty()) {  // each design once under each file design
    std::vector<std::string> crossed;
    for (const auto& d : designs)
      for (const auto& f : opts.file_designs) {
        auto n = mm::parse_design(d);
        n.file = f;
        crossed.push_back(n.full());
      }
    designs = std::move(crossed);
  }
  for (const auto& d : designs) (void)mm::parse_design(d);  // unknown names: std::invalid_argument
  compare_result res;
  if (!run_designs(prog, designs, opts, res)) return res;
  res.designs_agree = true;
  if (opts.vs_kernel) {
    if (auto why = kcheck::missing_privileges()) {
      res.exit_code = sc::EXIT_SCENARIO_ERROR;
      res.kernel_unavailable = *why;
      return res;
    }
    std::ostringstream err;
    res.kernel = kernel_counts(prog, opts, err);
    res.errors = err.str();
    if (!res.kernel) res.exit_code = sc::EXIT_SCENARIO_ERROR;
  }
  return res;
}

}  // namespace rmapkit::lab
