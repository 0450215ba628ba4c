// rmapkit_scale: the scale workload. Generates a scenario of P processes x V VMAs with
// one resident frame per VMA page, runs it on the model through the scenario layer (as
// `rmapkit run` would), and reports wall time, peak RSS and the model's bytes per
// resident frame and per VMA.
//
// The workload (defaults: 10,000 children, 100 VMAs): P maps one private anonymous
// region of V pages and mlocks every other page (V VMAs, the locked half populated);
// then, child after child, P forks C and C writes all V pages: V/2 COW copies of P's
// pages and V/2 fresh anonymous pages. At the end: children + 1 processes,
// (children + 1) x V VMAs, children x V + V/2 resident frames.
//
// Cost against size: the run also prints each tenth of the children's fork and write cost,
// with the tenth's CPU time split into user (the model's work) and system (the kernel's page
// faults and huge-page zeroing), so one run at 10^7 frames shows how cost grows from 10^6 on.
// --warm-memory N populates and releases N GiB first: on a VM whose host backs guest memory
// on first touch, fresh memory otherwise costs seconds per GiB (docs/performance.md).
//
// Memory is counted, not estimated: this executable replaces the global operator new and
// delete to keep the live heap bytes (malloc_usable_size, so allocator rounding counts);
// slabs and frame chunks are mapped from huge_arena, which counts its own (model_bytes()
// adds the two). The model's bytes are model_bytes() at the last statement minus
// model_bytes() before the machine was built. A breakdown by object kind multiplies the
// machine's object counts by the bytes one object really costs, measured here the same way
// (the object, its slab bookkeeping, its tree or map node).
#include <malloc.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "rmapkit/mm/huge_arena.h"
#include "rmapkit/mm/machine.h"
#include "rmapkit/model/model.h"
#include "rmapkit/scenario/parser.h"

// ---- counting allocator ---------------------------------------------------------------------

namespace {
std::atomic<std::int64_t> g_live_bytes{0};

void* counted(void* p) {
  if (!p) throw std::bad_alloc();
  g_live_bytes.fetch_add(static_cast<std::int64_t>(::malloc_usable_size(p)), std::memory_order_relaxed);
  return p;
}
void uncounted(void* p) noexcept {
  if (!p) return;
  g_live_bytes.fetch_sub(static_cast<std::int64_t>(::malloc_usable_size(p)), std::memory_order_relaxed);
  std::free(p);
}
void* aligned(std::size_t n, std::align_val_t a) {
  auto al = static_cast<std::size_t>(a);
  return counted(std::aligned_alloc(al, (n + al - 1) / al * al));
}
}  // namespace

void* operator new(std::size_t n) { return counted(std::malloc(n ? n : 1)); }
void* operator new[](std::size_t n) { return counted(std::malloc(n ? n : 1)); }
void* operator new(std::size_t n, std::align_val_t a) { return aligned(n, a); }
void* operator new[](std::size_t n, std::align_val_t a) { return aligned(n, a); }
void operator delete(void* p) noexcept { uncounted(p); }
void operator delete[](void* p) noexcept { uncounted(p); }
void operator delete(void* p, std::size_t) noexcept { uncounted(p); }
void operator delete[](void* p, std::size_t) noexcept { uncounted(p); }
void operator delete(void* p, std::align_val_t) noexcept { uncounted(p); }
void operator delete[](void* p, std::align_val_t) noexcept { uncounted(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { uncounted(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { uncounted(p); }

namespace {

namespace mm = rmapkit::mm;
namespace sc = rmapkit::scenario;
using clock_type = std::chrono::steady_clock;

std::int64_t live_bytes() { return g_live_bytes.load(std::memory_order_relaxed); }

/// The model's memory: the live heap and the pieces of huge_arena (slabs and frame chunks,
/// mapped rather than malloc'ed).
std::int64_t model_bytes() { return live_bytes() + static_cast<std::int64_t>(mm::huge_arena_bytes()); }

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

/// CPU time and minor faults of this process so far (getrusage): user time is the model's
/// own work; system time is the kernel giving the process memory (its page faults, and the
/// zeroing of the huge pages huge_arena asks for), which on a VM includes the host backing
/// guest memory on first touch.
struct cpu_mark {
  double user = 0, sys = 0;
  long minflt = 0;
  static cpu_mark now() {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    auto sec = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6; };
    return {sec(ru.ru_utime), sec(ru.ru_stime), ru.ru_minflt};
  }
};

/// Cost against size within one run: the fork and write time of each tenth of the children,
/// and the tenth's CPU time split into the model's (user) and the kernel's (system), so the
/// growth of an operation's cost with the machine's size shows without the start-up, the
/// parsing and the memory of separate runs of different sizes.
class growth_log {
 public:
  growth_log(unsigned children, unsigned vmas, const std::map<std::string, double>& per_kind)
      : _children(children), _vmas(vmas), _per_kind(per_kind), _start{0, 0, 0, cpu_mark::now()} {}

  /// After child @done (1-based) has written its pages.
  void child_done(unsigned done) {
    if (_children < 10 || done * 10ULL < _children * (_rows.size() + 1ULL)) return;
    _rows.push_back({done, total("fork"), total("write"), cpu_mark::now()});
  }

  void print() const {
    if (_rows.empty()) return;
    fmt::print(
        "cost against size in this run, each tenth of the children (per VMA: one VMA forked and one page written; "
        "user = the model's CPU time, system = the kernel's, faults = minor page faults):\n");
    fmt::print("{:>10} {:>16} {:>16} {:>18} {:>16} {:>18} {:>14}\n", "children", "resident frames", "fork us per VMA",
               "write ns per page", "user ns per VMA", "system ns per VMA", "faults per VMA");
    const mark* prev = &_start;
    for (const auto& r : _rows) {
      const double ops = static_cast<double>(r.done - prev->done) * _vmas;
      fmt::print("{:>10} {:>16} {:>16.3f} {:>18.1f} {:>16.1f} {:>18.1f} {:>14.3f}\n", r.done,
                 std::uint64_t{r.done} * _vmas + _vmas / 2, (r.fork - prev->fork) * 1e6 / ops,
                 (r.write - prev->write) * 1e9 / ops, (r.cpu.user - prev->cpu.user) * 1e9 / ops,
                 (r.cpu.sys - prev->cpu.sys) * 1e9 / ops, static_cast<double>(r.cpu.minflt - prev->cpu.minflt) / ops);
      prev = &r;
    }
  }

 private:
  struct mark {
    unsigned done = 0;
    double fork = 0, write = 0;
    cpu_mark cpu;
  };
  double total(const char* kind) const {
    const auto it = _per_kind.find(kind);
    return it == _per_kind.end() ? 0.0 : it->second;
  }
  unsigned _children, _vmas;
  const std::map<std::string, double>& _per_kind;
  mark _start;
  std::vector<mark> _rows;
};

/// Maps @gib GiB of fresh memory, populated, and unmaps it again, in a child process so
/// that this process's peak RSS and CPU times stay the run's; returns the seconds it took.
/// On a VM whose host backs guest memory only on first touch (and takes back what the guest
/// frees: virtio-balloon free page reporting), fresh memory costs the run the host's faults
/// as well as the guest kernel's; right after this the run pays only the guest's, and the
/// time taken here is what the host charged.
double warm_memory(unsigned gib) {
  const auto t0 = clock_type::now();
  const pid_t child = ::fork();
  if (child < 0) throw std::runtime_error("rmapkit_scale --warm-memory: fork failed");
  if (child == 0) {
    // All of it at once: a GiB unmapped before the next is mapped would be the same guest
    // pages again. The child's exit gives it all back.
    const std::size_t bytes = std::size_t{gib} << 30;
    const void* m = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    ::_exit(m == MAP_FAILED ? 1 : 0);
  }
  int status = 0;
  if (::waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error(fmt::format("rmapkit_scale --warm-memory: could not populate {} GiB", gib));
  return seconds_since(t0);
}

std::string scale_scenario(unsigned children, unsigned vmas) {
  std::ostringstream s;
  s << fmt::format("# scale: {} children of P, {} VMAs each, every page resident (rmapkit_scale)\n", children, vmas);
  s << "spawn P\n" << fmt::format("P: mmap A anon private pages={}\n", vmas);
  for (unsigned i = 0; i < vmas; i += 2) s << fmt::format("P: mlock A[{}]\n", i);
  for (unsigned c = 0; c < children; ++c) s << fmt::format("P: fork C{0}\nC{0}: write A\n", c);
  return s.str();
}

/// The same workload through the library's own calls, without the scenario layer and so
/// without its limit of 16,384 live processes (the kernel's pid_max on a small machine,
/// which the model does not have). Times each call into @per_kind; @at_end runs after the
/// last write, as on_statement does after the last statement.
int run_direct(mm::machine& m, unsigned children, unsigned vmas, std::map<std::string, double>& per_kind,
               growth_log& growth, const std::function<void()>& at_end) {
  const rmapkit::vaddr_t base{rmapkit::scenario::SLOT_BASE};
  auto timed = [&](const char* kind, auto&& f) {
    const auto t = clock_type::now();
    const int r = f();
    per_kind[kind] += seconds_since(t);
    if (r != 0) throw std::runtime_error(fmt::format("rmapkit_scale --direct: {} failed: {}", kind, r));
  };
  auto* p = m.mm_alloc("P");
  timed("other", [&] { return m.do_mmap(*p, base, vmas, mm::PROT_READ_ | mm::PROT_WRITE_, false, nullptr, {}); });
  for (unsigned i = 0; i < vmas; i += 2)
    timed("mlock", [&] { return m.do_mlock(*p, rmapkit::page_addr(base, i), 1, true); });
  for (unsigned c = 0; c < children; ++c) {
    mm::mm_struct* child = nullptr;
    timed("fork", [&] {
      child = m.dup_mm(*p, fmt::format("C{}", c));
      return 0;
    });
    timed("write", [&] {
      for (unsigned i = 0; i < vmas; ++i)
        if (int r = m.access(*child, rmapkit::page_addr(base, i), true, (std::uint64_t{c} + 1) << 32 | (i + 1U)))
          return r;
      return 0;
    });
    growth.child_done(c + 1);
  }
  at_end();
  // Every process exits, as a scenario run ends: the report's teardown time.
  for (auto* q : std::vector<mm::mm_struct*>(m.mms())) m.exit_mm(q);
  return 0;
}

// ---- what one object really costs -----------------------------------------------------------

/// Bytes per object of a slab_cache<T> holding @n of them (object, its slab's share and
/// bookkeeping).
template <typename T>
double slab_bytes(std::size_t n = 1U << 14) {
  std::vector<T*> objs;
  objs.reserve(n);
  mm::slab_cache<T> cache;
  auto before = model_bytes();
  for (std::size_t i = 0; i < n; ++i) objs.push_back(cache.alloc());
  auto bytes = static_cast<double>(model_bytes() - before) / static_cast<double>(n);
  for (auto* p : objs) cache.free(p);
  return bytes;
}

/// Heap bytes per entry of the VMA map (mm->mm_mt).
double vma_map_bytes(std::size_t n = 1U << 14) {
  decltype(mm::mm_struct::mm_mt) m;
  auto before = live_bytes();
  for (std::size_t i = 0; i < n; ++i) m.emplace(i, nullptr);
  return static_cast<double>(live_bytes() - before) / static_cast<double>(n);
}

/// Bytes per frame of the machine's frame table (its chunks are mapped, not malloc'ed,
/// so the table reports them itself), for @n frames.
double frame_bytes(std::size_t n = 1U << 20) {
  auto t = std::make_unique<mm::frame_table>();
  for (std::size_t i = 0; i < n; ++i) t->grow();
  return static_cast<double>(t->bytes()) / static_cast<double>(n);
}

/// Heap bytes per page-table page below the pgd (a pud, pmd or pte table).
double table_bytes() {
  auto pt = std::make_unique<mm::page_table>();
  auto before = live_bytes();
  pt->set(rmapkit::vaddr_t{0x100000000000ULL}, mm::pte_t::mk_present(rmapkit::pfn_t{2}, true));
  return static_cast<double>(live_bytes() - before) / static_cast<double>(pt->table_pages() - 1);
}

struct snapshot {
  std::int64_t bytes = 0;
  mm::machine::live_objects live{};
  std::uint64_t tables = 0;  ///< page-table pages below the pgds
  double at = 0;             ///< seconds into the run
};

std::string mib(double bytes) { return fmt::format("{:.1f} MiB", bytes / (1024.0 * 1024.0)); }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"rmapkit_scale: the scale workload on the model: time, peak RSS, model bytes per frame and per VMA"};
  unsigned children = 10000, vmas = 100;
  std::string emit, design(mm::anon_rmap_designs().front());
  bool direct = false;
  unsigned warm_gib = 0;
  app.add_option("--children", children, "processes forked from P (at most 16,383 without --direct)")
      ->capture_default_str()
      ->check(CLI::Range(1U, 200000U));
  app.add_option("--vmas", vmas, "VMAs (and resident pages) per process; even")
      ->capture_default_str()
      ->check(CLI::Range(2U, 100000U));
  app.add_option("--emit", emit, "also write the generated scenario to this file (for rmapkit run/bench)");
  app.add_option("--design", design, "anonymous rmap design of the model")->capture_default_str();
  app.add_flag("--direct", direct,
               "run the workload through the library's calls, not a scenario: no limit of 16,384 live processes");
  app.add_option("--warm-memory", warm_gib,
                 "before the run, populate and release this many GiB of fresh memory (on a VM whose host backs "
                 "memory on first touch, the run then measures the model, not the host)")
      ->check(CLI::Range(0U, 64U));
  CLI11_PARSE(app, argc, argv);
  if (vmas % 2) {
    std::cerr << "rmapkit_scale: --vmas must be even\n";
    return 2;
  }
  if (!direct && children + 1U > sc::MAX_LIVE_PROCESSES) {
    std::cerr << fmt::format(
        "rmapkit_scale: --children {}: a scenario holds at most {} live processes (the kernel's pid_max); "
        "--direct runs the workload past it\n",
        children, sc::MAX_LIVE_PROCESSES);
    return 2;
  }

  if (warm_gib > 0) {
    try {
      const double t = warm_memory(warm_gib);
      fmt::print("warm-up: {} GiB of fresh memory populated and released in {:.2f} s ({:.2f} s per GiB)\n", warm_gib, t,
                 t / warm_gib);
    } catch (const std::exception& e) {
      std::cerr << e.what() << '\n';
      return 1;
    }
  }

  auto t0 = clock_type::now();
  std::optional<sc::program> prog;
  if (!direct) {
    const std::string text = scale_scenario(children, vmas);
    if (!emit.empty()) std::ofstream(emit) << text;
    auto parsed = sc::parse(text, "scale.rmap");
    if (!parsed) {
      std::cerr << parsed.error().str() << '\n';
      return 2;
    }
    auto resolved = sc::resolve(*parsed);
    if (!resolved) {
      std::cerr << resolved.error().str() << '\n';
      return 2;
    }
    prog = std::move(*resolved);
  } else if (!emit.empty()) {
    std::cerr << "rmapkit_scale: --emit writes a scenario, and --direct runs none\n";
    return 2;
  }
  const double t_parse = seconds_since(t0);

  // What each object costs, measured before the run: slab caches keep released slabs in
  // a pool for the next cache (slab.h), so a probe after the run would get the run's
  // slabs back. The probes' pooled slabs are reused by the run's machine, so they count
  // as the machine's: `before` is taken before the probes.
  const auto before = model_bytes();
  const double b_folio = frame_bytes(), b_vma = slab_bytes<mm::vm_area_struct>(),
               b_avc = slab_bytes<mm::anon_vma_chain>(), b_av = slab_bytes<mm::anon_vma>(),
               b_mm = slab_bytes<mm::mm_struct>(1024), b_map = vma_map_bytes(), b_table = table_bytes();

  auto m = std::make_unique<mm::machine>(design);
  std::map<std::string, double> per_kind;
  growth_log growth(children, vmas, per_kind);
  unsigned written = 0;
  snapshot last;
  auto t_run = clock_type::now();
  rmapkit::model::run_options opts;
  opts.check_invariants = false;
  opts.design = design;
  auto take_last = [&] {
    last.bytes = model_bytes() - before;
    last.live = m->live();
    for (const auto* q : m->mms()) last.tables += q->pgd.table_pages() - 1;
    last.at = seconds_since(t_run);
  };
  opts.on_statement = [&](const sc::op& o, std::chrono::nanoseconds t) {
    const char* kind = std::holds_alternative<sc::op_fork>(o.body)    ? "fork"
                       : std::holds_alternative<sc::op_write>(o.body) ? "write"
                       : std::holds_alternative<sc::op_mlock>(o.body) ? "mlock"
                                                                      : "other";
    per_kind[kind] += std::chrono::duration<double>(t).count();
    if (std::holds_alternative<sc::op_write>(o.body)) growth.child_done(++written);
    if (&o == &prog->ops.back()) take_last();
  };
  std::ostream null(nullptr);
  int code = 1;
  try {
    code = direct ? run_direct(*m, children, vmas, per_kind, growth, take_last)
                  : rmapkit::model::run_on(*m, *prog, null, std::cerr, opts);
  } catch (const std::exception& e) {
    std::cerr << e.what() << '\n';
  }
  const double t_total = seconds_since(t_run);
  m.reset();
  if (code != 0) return code;
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  const double peak = static_cast<double>(ru.ru_maxrss) * 1024.0;

  const auto& l = last.live;
  const double frames = static_cast<double>(l.folios), nvmas = static_cast<double>(l.vmas);

  // The workload must have built what it promises, or its numbers mean nothing.
  const std::size_t want_mms = children + 1U, want_vmas = std::size_t{children + 1U} * vmas,
                    want_frames = std::size_t{children} * vmas + vmas / 2;
  if (l.mms != want_mms || l.vmas != want_vmas || l.folios != want_frames) {
    std::cerr << fmt::format("rmapkit_scale: expected {} processes, {} VMAs, {} frames; the model has {}, {}, {}\n",
                             want_mms, want_vmas, want_frames, l.mms, l.vmas, l.folios);
    return 1;
  }
  fmt::print("rmapkit_scale: {} processes, {} VMAs, {} resident frames, {} anon_vmas, {} AVCs ({} design)\n", l.mms,
             l.vmas, l.folios, l.anon_vmas, l.avcs, design);
  fmt::print(
      "time: generate+parse+resolve {:.2f} s; statements {:.2f} s (fork {:.2f} s, write {:.2f} s, mlock {:.3f} s, "
      "other {:.3f} s); teardown {:.2f} s; total {:.2f} s\n",
      t_parse, last.at, per_kind["fork"], per_kind["write"], per_kind["mlock"], per_kind["other"], t_total - last.at,
      t_parse + t_total);
  // Per operation, so runs of different sizes compare (docs/performance.md, cost against size).
  fmt::print("per operation: fork {:.3f} us per VMA copied, write {:.1f} ns per page\n",
             per_kind["fork"] * 1e6 / (static_cast<double>(children) * vmas),
             per_kind["write"] * 1e9 / (static_cast<double>(children) * vmas));
  growth.print();
  fmt::print(
      "memory: peak RSS {} (ru_maxrss); model memory (heap and frame table) at the last statement {} ({:.0f} bytes per "
      "resident frame, "
      "{:.0f} per VMA, all of it)\n",
      mib(peak), mib(static_cast<double>(last.bytes)), static_cast<double>(last.bytes) / frames,
      static_cast<double>(last.bytes) / nvmas);
  struct row {
    const char* what;
    double count, each;
  };
  const row rows[] = {
      {"folio (frame array)", frames, b_folio},
      {"vm_area_struct (slab)", nvmas, b_vma},
      {"mm_mt entry (VMA map)", nvmas, b_map},
      {"anon_vma_chain (slab)", static_cast<double>(l.avcs), b_avc},
      {"anon_vma (slab)", static_cast<double>(l.anon_vmas), b_av},
      {"mm_struct (slab, 4 KiB pgd inline)", static_cast<double>(l.mms), b_mm},
      {"page-table page (pud/pmd/pte)", static_cast<double>(last.tables), b_table},
  };
  fmt::print("{:<36} {:>10} {:>12} {:>12} {:>10} {:>10}\n", "object", "count", "bytes each", "total", "per frame",
             "per VMA");
  double sum = 0;
  for (const auto& r : rows) {
    sum += r.count * r.each;
    fmt::print("{:<36} {:>10.0f} {:>12.1f} {:>12} {:>10.1f} {:>10.1f}\n", r.what, r.count, r.each,
               mib(r.count * r.each), r.count * r.each / frames, r.count * r.each / nvmas);
  }
  fmt::print(
      "{:<36} {:>10} {:>12} {:>12} ({:.1f}% of the counted memory; sizeof(folio) = {}, sizeof(vm_area_struct) = {}, "
      "sizeof(anon_vma_chain) = {}, sizeof(anon_vma) = {})\n",
      "sum", "", "", mib(sum), 100.0 * sum / static_cast<double>(last.bytes), sizeof(mm::folio),
      sizeof(mm::vm_area_struct), sizeof(mm::anon_vma_chain), sizeof(mm::anon_vma));
  fmt::print(
      "frame metadata: {:.1f} bytes per resident frame (goal: at most 64); VMA-side metadata: {:.0f} bytes per VMA\n",
      b_folio, (sum - frames * b_folio) / nvmas);
  fmt::print("fits in 8 GiB: {} (peak RSS {:.2f} GiB)\n", peak < 8.0 * (1ULL << 30) ? "yes" : "NO",
             peak / static_cast<double>(1ULL << 30));
  return 0;
}
