// Per-operation costs of the model, through the library API (rmapkit::mm::machine), for
// every anonymous reverse-map design that mm::anon_rmap_designs() lists and, for file
// walks, every file design of mm::file_rmap_designs(): a design registered there shows up
// here with no change to this file.
//
// Every benchmark times only the operation it is named after (manual time, steady_clock
// around the call); building the world before it and tearing it down after are not
// timed. Besides the time per iteration each reports its own unit cost as a counter:
// ns/page, ns/vma (per VMA an rmap walk visited, from machine::stats()), ns/node,
// ns/query, us/op. Sizes mirror the kernel's baseline measurements where there are some
// (fork and munmap of N VMAs x M pages; the kernel columns of docs/performance.md), so the
// two can be compared.
//
// `--smoke` (our flag, taken out before Google Benchmark sees the rest) registers every
// benchmark at tiny sizes only: the `bench` ctest runs that with a tiny min time so the
// suite cannot rot.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "bench_main.h"
#include "rmapkit/interval_tree.h"
#include "rmapkit/mm/machine.h"
#include "rmapkit/prio_tree.h"

namespace {

namespace mm = rmapkit::mm;
using rmapkit::page_addr;
using rmapkit::pfn_t;
using rmapkit::pgoff_t;
using rmapkit::vaddr_t;

bool g_smoke = false;

constexpr int RW = mm::PROT_READ_ | mm::PROT_WRITE_;

/// Slot @n, 1 GiB apart as in scenarios.
constexpr vaddr_t slot(std::uint64_t n) { return vaddr_t{0x100000000000ULL + n * 0x40000000ULL}; }

void must(int r, const char* what) {
  if (r != 0) throw std::runtime_error(fmt::format("{} failed: {}", what, r));
}
void must(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(fmt::format("{} failed", what));
}

double iters(const benchmark::State& st) { return static_cast<double>(st.iterations()); }

/// Manual timing: accumulates the timed part of every iteration.
class stopwatch {
 public:
  void start() { _t0 = std::chrono::steady_clock::now(); }
  void stop(benchmark::State& st) {
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - _t0).count();
    st.SetIterationTime(s);
    _total += s;
  }
  /// Sets counter @name to the timed nanoseconds per @units (summed over all iterations).
  void per(benchmark::State& st, const char* name, double units) const {
    st.counters[name] = units > 0 ? _total * 1e9 / units : 0.0;
  }

 private:
  std::chrono::steady_clock::time_point _t0;
  double _total = 0;
};

/// @n private anonymous VMAs of @pages pages each, one unmapped guard page apart (so they
/// never merge), in slot 0; every page written when @write.
void map_vmas(mm::machine& m, mm::mm_struct& p, std::uint64_t n, std::uint64_t pages, bool write) {
  for (std::uint64_t v = 0; v < n; ++v) {
    vaddr_t at = page_addr(slot(0), v * (pages + 1));
    must(m.do_mmap(p, at, pages, RW, false, nullptr, pgoff_t{0}), "mmap");
    if (write)
      for (std::uint64_t i = 0; i < pages; ++i) must(m.access(p, page_addr(at, i), true, (v << 32) | (i + 1)), "write");
  }
}

/// The folio mapped at @addr in @p.
mm::folio& folio_at(mm::machine& m, const mm::mm_struct& p, vaddr_t addr) {
  auto pte = p.pgd.get(addr);
  must(pte.present(), "a present PTE");
  return m.folio_of(pte.pfn());
}

// ---- faults -------------------------------------------------------------------------------

/// First write to @pages pages of a fresh private anonymous region: do_anonymous_page.
void anon_fault(benchmark::State& st, std::string design) {
  const auto pages = static_cast<std::uint64_t>(st.range(0));
  stopwatch sw;
  for (auto _ : st) {
    mm::machine m(design);
    auto* p = m.mm_alloc("P");
    must(m.do_mmap(*p, slot(0), pages, RW, false, nullptr, pgoff_t{0}), "mmap");
    sw.start();
    for (std::uint64_t i = 0; i < pages; ++i) must(m.access(*p, page_addr(slot(0), i), true, i + 1), "write");
    sw.stop(st);
  }
  sw.per(st, "ns/page", static_cast<double>(pages) * iters(st));
}

/// The child of a fork writes every page while its parent still maps them: wp_page_copy.
void cow_copy(benchmark::State& st, std::string design) {
  const auto pages = static_cast<std::uint64_t>(st.range(0));
  stopwatch sw;
  for (auto _ : st) {
    mm::machine m(design);
    auto* p = m.mm_alloc("P");
    map_vmas(m, *p, 1, pages, true);
    auto* c = m.dup_mm(*p, "C");
    sw.start();
    for (std::uint64_t i = 0; i < pages; ++i) must(m.access(*c, page_addr(slot(0), i), true, ~i), "write");
    sw.stop(st);
    must(c->pgd.get(slot(0)).pfn() != p->pgd.get(slot(0)).pfn(), "a COW copy");
  }
  sw.per(st, "ns/page", static_cast<double>(pages) * iters(st));
}

/// The parent writes every page after its child exited: the write fault reuses each page.
void cow_reuse(benchmark::State& st, std::string design) {
  const auto pages = static_cast<std::uint64_t>(st.range(0));
  stopwatch sw;
  for (auto _ : st) {
    mm::machine m(design);
    auto* p = m.mm_alloc("P");
    map_vmas(m, *p, 1, pages, true);
    const auto before = p->pgd.get(slot(0)).pfn();
    m.exit_mm(m.dup_mm(*p, "C"));
    sw.start();
    for (std::uint64_t i = 0; i < pages; ++i) must(m.access(*p, page_addr(slot(0), i), true, ~i), "write");
    sw.stop(st);
    must(p->pgd.get(slot(0)).pfn() == before, "a reused page");
  }
  sw.per(st, "ns/page", static_cast<double>(pages) * iters(st));
}

/// Reads every page of a shared file mapping whose pages are all in the page cache: one
/// fault per 16 pages maps the whole fault-around window.
void file_fault(benchmark::State& st) {
  const auto pages = static_cast<std::uint64_t>(st.range(0));
  stopwatch sw;
  for (auto _ : st) {
    mm::machine m;
    auto* f = m.memfd_create("F", pages, 1);
    auto* p = m.mm_alloc("P");
    must(m.do_mmap(*p, slot(0), pages, RW, true, f, pgoff_t{0}), "mmap");
    const auto faults = m.vmstat().count("pgfault") ? m.vmstat().at("pgfault") : 0;
    sw.start();
    for (std::uint64_t i = 0; i < pages; ++i) must(m.access(*p, page_addr(slot(0), i), false), "read");
    sw.stop(st);
    st.counters["faults"] = static_cast<double>(m.vmstat().at("pgfault") - faults);
    m.exit_mm(p);
    m.file_put(f);
  }
  sw.per(st, "ns/page", static_cast<double>(pages) * iters(st));
}

// ---- fork, exit, munmap, mremap -----------------------------------------------------------

/// fork of a process with N private anonymous VMAs of M written pages (the kernel's fork of
/// the same shapes is in docs/performance.md): dup_mm alone is timed; the child exits untimed.
void fork_nm(benchmark::State& st, std::string design) {
  const auto n = static_cast<std::uint64_t>(st.range(0)), pages = static_cast<std::uint64_t>(st.range(1));
  mm::machine m(design);
  auto* p = m.mm_alloc("P");
  map_vmas(m, *p, n, pages, true);
  stopwatch sw;
  for (auto _ : st) {
    sw.start();
    auto* c = m.dup_mm(*p, "C");
    sw.stop(st);
    m.exit_mm(c);
  }
  const auto it = static_cast<double>(st.iterations());
  sw.per(st, "us/op", it * 1000);
  sw.per(st, "ns/vma", it * static_cast<double>(n));
  sw.per(st, "ns/page", it * static_cast<double>(n * pages));
}

/// exit of such a child while its parent lives (exit_mm: zap, free page tables, VMAs, AVCs).
void exit_nm(benchmark::State& st, std::string design) {
  const auto n = static_cast<std::uint64_t>(st.range(0)), pages = static_cast<std::uint64_t>(st.range(1));
  mm::machine m(design);
  auto* p = m.mm_alloc("P");
  map_vmas(m, *p, n, pages, true);
  stopwatch sw;
  for (auto _ : st) {
    auto* c = m.dup_mm(*p, "C");
    sw.start();
    m.exit_mm(c);
    sw.stop(st);
  }
  const auto it = static_cast<double>(st.iterations());
  sw.per(st, "us/op", it * 1000);
  sw.per(st, "ns/page", it * static_cast<double>(n * pages));
}

/// munmap of N VMAs of M written pages each; range(2) = 1 keeps a forked child alive, so
/// every page is COW-shared (the kernel's "munmap shared" column).
void munmap_nm(benchmark::State& st, std::string design) {
  const auto n = static_cast<std::uint64_t>(st.range(0)), pages = static_cast<std::uint64_t>(st.range(1));
  const bool shared = st.range(2) != 0;
  stopwatch sw;
  for (auto _ : st) {
    mm::machine m(design);
    auto* p = m.mm_alloc("P");
    map_vmas(m, *p, n, pages, true);
    if (shared) m.dup_mm(*p, "C");
    sw.start();
    for (std::uint64_t v = 0; v < n; ++v) must(m.do_munmap(*p, page_addr(slot(0), v * (pages + 1)), pages), "munmap");
    sw.stop(st);
  }
  const auto it = static_cast<double>(st.iterations());
  sw.per(st, "ns/vma", it * static_cast<double>(n));
  sw.per(st, "ns/page", it * static_cast<double>(n * pages));
}

/// mremap MREMAP_FIXED of one VMA of M written pages to another slot and back.
void mremap_move(benchmark::State& st, std::string design) {
  const auto pages = static_cast<std::uint64_t>(st.range(0));
  mm::machine m(design);
  auto* p = m.mm_alloc("P");
  map_vmas(m, *p, 1, pages, true);
  stopwatch sw;
  std::uint64_t at = 0;
  for (auto _ : st) {
    sw.start();
    must(m.do_mremap_move(*p, slot(at), pages, slot(at + 1)), "mremap");
    sw.stop(st);
    ++at;
  }
  const auto it = static_cast<double>(st.iterations());
  sw.per(st, "us/op", it * 1000);
  sw.per(st, "ns/page", it * static_cast<double>(pages));
}

// ---- rmap walks ---------------------------------------------------------------------------

/// A machine where one page is mapped by K processes, for the walk benchmarks.
struct shared_page {
  enum class kind { anon, file, ksm };
  mm::machine m;
  std::vector<mm::mm_struct*> procs;
  mm::address_space* file = nullptr;

  shared_page(std::string_view design, kind k, std::uint64_t sharers) : m(design) {
    auto* p = m.mm_alloc("P");
    procs.push_back(p);
    switch (k) {
      case kind::anon:
        // P writes the page and forks K-1 children that leave it alone: one anon_vma
        // (P's) with K AVCs over the page's offset.
        map_vmas(m, *p, 1, 1, true);
        for (std::uint64_t i = 1; i < sharers; ++i) procs.push_back(m.dup_mm(*p, fmt::format("C{}", i)));
        break;
      case kind::file:
        // K unrelated processes map the file shared and read it: K VMAs in i_mmap.
        file = m.memfd_create("F", 1, 1);
        for (std::uint64_t i = 1; i < sharers; ++i) procs.push_back(m.mm_alloc(fmt::format("Q{}", i)));
        for (auto* q : procs) {
          must(m.do_mmap(*q, slot(0), 1, RW, true, file, pgoff_t{0}), "mmap");
          must(m.access(*q, slot(0), false), "read");
        }
        break;
      case kind::ksm:
        // K unrelated processes write equal pages that KSM merges into one KSM page.
        for (std::uint64_t i = 1; i < sharers; ++i) procs.push_back(m.mm_alloc(fmt::format("Q{}", i)));
        for (auto* q : procs) {
          map_vmas(m, *q, 1, 1, false);
          must(m.access(*q, slot(0), true, 0x42), "write");
          must(m.do_madvise(*q, slot(0), 1, mm::madv::mergeable), "madvise");
        }
        m.ksm_run_to_fixpoint();
        must(folio().is_ksm(), "a KSM page");
        break;
    }
    must(folio().mapcount == static_cast<int>(sharers), "every sharer mapping the page");
  }
  shared_page(const shared_page&) = delete;
  shared_page& operator=(const shared_page&) = delete;
  ~shared_page() {
    for (auto* q : procs) m.exit_mm(q);
    if (file) m.file_put(file);
  }

  mm::folio& folio() { return folio_at(m, *procs[0], slot(0)); }
};

/// Walks per timed section: enough for ~256 VMA visits, so that reading the clock (~20 ns)
/// does not count as walk time.
std::uint64_t batch(std::uint64_t sharers) { return std::max<std::uint64_t>(1, 256 / sharers); }

/// rmap_walk() with an rmap_one that only counts: the cost of finding the VMAs.
void rmap_walk(benchmark::State& st, std::string design, shared_page::kind k) {
  const auto sharers = static_cast<std::uint64_t>(st.range(0));
  shared_page w(design, k, sharers);
  auto& f = w.folio();
  std::uint64_t calls = 0;
  mm::rmap_walk_control rwc;
  rwc.rmap_one = [&calls](mm::folio&, mm::vm_area_struct&, vaddr_t) {
    ++calls;
    return true;
  };
  const auto before = w.m.stats();
  const auto reps = batch(sharers);
  stopwatch sw;
  for (auto _ : st) {
    sw.start();
    for (std::uint64_t i = 0; i < reps; ++i) w.m.rmap_walk(f, rwc);
    sw.stop(st);
  }
  benchmark::DoNotOptimize(calls);
  const auto visited = w.m.stats().vmas_visited - before.vmas_visited;
  must(static_cast<double>(visited) == static_cast<double>(sharers * reps) * iters(st),
       "every mapping visited once per walk");
  st.counters["vmas/walk"] = static_cast<double>(sharers);
  sw.per(st, "ns/vma", static_cast<double>(visited));
}

/// The least a design's own walk must do per mapping, when the benchmark can do it without
/// the design's private structures: walk_vs_baseline's third floor ("x design floor").
enum class design_floor {
  none,           ///< lists (2.6.7, 2.6.34, i_mmap's list and prio tree): only the two floors
  interval_tree,  ///< anon_vma->rb_root of AVCs or i_mmap of VMAs: the tree's iteration
  find_vma,       ///< PTE chains: a (mm, address) per mapping, and the VMA rmap_one is handed
};

design_floor anon_design_floor(std::string_view design) {
  if (design == "linux-6" || design == "linux-3.19") return design_floor::interval_tree;
  if (design == "pte-chain" || design == "legoos") return design_floor::find_vma;
  return design_floor::none;
}

/// 1 when the PTE at @v's address of @f maps @f, else 0: the step of every floor that starts
/// from a VMA (vma_address(), then the PTE through vma->vm_mm, dependent loads).
inline std::uint64_t maps_through(const mm::vm_area_struct& v, const mm::folio& f) {
  const auto a = mm::machine::vma_address_or_none(v, f.index, 1);
  return a != mm::machine::NO_ADDRESS && v.vm_mm->pgd.get(a).pfn() == f.pfn ? 1U : 0U;
}

/// The design floor: @reps walks of the page of @w that do only the design's unavoidable
/// steps and read each PTE inline, with none of the walk protocol (rmap_one through
/// rmap_walk_control, the walk's counters and its lock). Returns the PTEs found mapping it.
std::uint64_t walk_design_floor(shared_page& w, mm::folio& f, design_floor d, std::uint64_t reps) {
  const std::uint64_t pgoff = f.index.value;
  std::uint64_t hits = 0;
  for (std::uint64_t i = 0; i < reps; ++i) {
    if (d == design_floor::find_vma) {
      for (auto* q : w.procs) {
        const auto* v = mm::machine::find_vma(*q, slot(0));
        hits += v && q->pgd.get(slot(0)).pfn() == f.pfn ? 1U : 0U;
      }
    } else if (f.is_anon()) {
      const auto& tree = f.anon()->rb_root;
      for (auto* avc = tree.iter_first(pgoff, pgoff); avc; avc = tree.iter_next(*avc, pgoff, pgoff))
        hits += maps_through(*avc->vma, f);
    } else {
      const auto& tree = f.file()->i_mmap;
      for (auto* v = tree.iter_first(pgoff, pgoff); v; v = tree.iter_next(*v, pgoff, pgoff))
        hits += maps_through(*v, f);
    }
  }
  return hits;
}

/// The protocol floor: what any walk through rmap_walk_control does per mapping even when
/// it knows its answer in advance (@calls: each mapping's VMA and address): the invalid_vma
/// and done tests, and rmap_one called through the control, as rmap_visit_at() calls it.
/// An object-based design (@stores_addresses false) keeps VMAs, not addresses, so its floor
/// also computes vma_address() from each. Returns the mappings visited.
template <bool stores_addresses>
std::uint64_t walk_protocol_floor(mm::folio& f, const mm::rmap_walk_control& rwc,
                                  const std::vector<std::pair<mm::vm_area_struct*, vaddr_t>>& calls,
                                  std::uint64_t reps) {
  std::uint64_t visited = 0;
  for (std::uint64_t i = 0; i < reps; ++i)
    for (auto [v, a] : calls) {
      if constexpr (!stores_addresses) a = mm::machine::vma_address_or_none(*v, f.index, 1);
      if (rwc.invalid_vma && rwc.invalid_vma(*v)) continue;
      ++visited;
      if (!rwc.rmap_one(f, *v, a) || (rwc.done && rwc.done(f))) break;
    }
  return visited;
}

/// The physical limit of a walk: a walk of the shared page whose rmap_one reads the PTE
/// (what every real rmap_one does first) against a loop that only reads the same PTEs from
/// a list of (mm, address) made in advance — the one unavoidable load per mapping, from
/// the same page tables. Both are timed in turns in one run, so "x baseline" is a ratio
/// that carries from host to host where nanoseconds do not. A second baseline starts from
/// each mapping's VMA instead ("x vma baseline"); a third is the design's own (@floor,
/// walk_design_floor(), "x design floor"); a fourth is the walk protocol's
/// (walk_protocol_floor(), "x protocol floor"), with "protocol floor x baseline" its own
/// multiple of the PTE floor: no walk through rmap_walk_control can go below it.
void walk_vs_baseline(benchmark::State& st, std::string design, shared_page::kind k, design_floor floor) {
  const auto sharers = static_cast<std::uint64_t>(st.range(0));
  shared_page w(design, k, sharers);
  auto& f = w.folio();
  std::uint64_t found = 0;
  mm::rmap_walk_control rwc;
  rwc.rmap_one = [&found, &f](mm::folio&, mm::vm_area_struct& vma, vaddr_t addr) {
    found += vma.vm_mm->pgd.get(addr).pfn() == f.pfn ? 1U : 0U;
    return true;
  };
  std::vector<std::pair<const mm::page_table*, vaddr_t>> ptes;
  for (auto* q : w.procs) ptes.emplace_back(&q->pgd, slot(0));
  // The floor of a design that finds VMAs: from each mapping's VMA, vma_address() and the
  // PTE through vma->vm_mm (the dependent loads every object-based walk makes).
  std::vector<mm::vm_area_struct*> vmas;
  for (auto* q : w.procs) vmas.push_back(mm::machine::find_vma(*q, slot(0)));
  std::vector<std::pair<mm::vm_area_struct*, vaddr_t>> calls;
  for (auto* v : vmas) calls.emplace_back(v, mm::machine::vma_address_or_none(*v, f.index, 1));
  const auto reps = batch(sharers);
  const bool own = floor != design_floor::none;
  // PTE chains record addresses; every other design finds VMAs.
  const bool stores_addresses = floor == design_floor::find_vma;
  std::uint64_t read = 0, via_vma = 0, via_design = 0, via_protocol = 0;
  double walk_s = 0, base_s = 0, vma_s = 0, design_s = 0, protocol_s = 0;
  for (auto _ : st) {
    auto t0 = std::chrono::steady_clock::now();
    for (std::uint64_t i = 0; i < reps; ++i) w.m.rmap_walk(f, rwc);
    auto t1 = std::chrono::steady_clock::now();
    for (std::uint64_t i = 0; i < reps; ++i)
      for (auto [pt, a] : ptes) read += pt->get(a).pfn() == f.pfn ? 1U : 0U;
    auto t2 = std::chrono::steady_clock::now();
    for (std::uint64_t i = 0; i < reps; ++i)
      for (auto* v : vmas) via_vma += maps_through(*v, f);
    auto t3 = std::chrono::steady_clock::now();
    if (own) via_design += walk_design_floor(w, f, floor, reps);
    auto t4 = std::chrono::steady_clock::now();
    via_protocol += stores_addresses ? walk_protocol_floor<true>(f, rwc, calls, reps)
                                     : walk_protocol_floor<false>(f, rwc, calls, reps);
    auto t5 = std::chrono::steady_clock::now();
    design_s += std::chrono::duration<double>(t4 - t3).count();
    protocol_s += std::chrono::duration<double>(t5 - t4).count();
    benchmark::DoNotOptimize(read);
    benchmark::DoNotOptimize(via_vma);
    const double ws = std::chrono::duration<double>(t1 - t0).count();
    walk_s += ws;
    base_s += std::chrono::duration<double>(t2 - t1).count();
    vma_s += std::chrono::duration<double>(t3 - t2).count();
    st.SetIterationTime(ws);
  }
  const double mappings = static_cast<double>(sharers * reps) * iters(st);
  // rmap_one counts for the walk and for the protocol floor.
  must(static_cast<double>(found) == 2 * mappings && static_cast<double>(via_protocol) == mappings &&
           static_cast<double>(read) == mappings && static_cast<double>(via_vma) == mappings &&
           (!own || static_cast<double>(via_design) == mappings),
       "every PTE read, once");
  st.counters["ns/mapping"] = walk_s * 1e9 / mappings;
  st.counters["baseline ns/mapping"] = base_s * 1e9 / mappings;
  st.counters["x baseline"] = base_s > 0 ? walk_s / base_s : 0.0;
  st.counters["vma baseline ns/mapping"] = vma_s * 1e9 / mappings;
  st.counters["x vma baseline"] = vma_s > 0 ? walk_s / vma_s : 0.0;
  st.counters["protocol floor ns/mapping"] = protocol_s * 1e9 / mappings;
  st.counters["x protocol floor"] = protocol_s > 0 ? walk_s / protocol_s : 0.0;
  st.counters["protocol floor x baseline"] = base_s > 0 ? protocol_s / base_s : 0.0;
  if (own) {
    st.counters["design floor ns/mapping"] = design_s * 1e9 / mappings;
    st.counters["x design floor"] = design_s > 0 ? walk_s / design_s : 0.0;
  }
}

/// The prio tree's case: one process maps N windows of 4 pages of a big file at scattered
/// offsets; a walk of a page that one window holds. The lists read all N windows; a tree
/// reads its path and the hit (entries/walk is the design's own count).
void rmap_walk_file_windows(benchmark::State& st, std::string design) {
  const auto n = static_cast<std::uint64_t>(st.range(0));
  mm::machine m(design);
  auto* f = m.memfd_create("F", 16 * n + 8, 1);
  auto* p = m.mm_alloc("P");
  // The page's window sits mid-file; the others are scattered around it, none over it.
  const std::uint64_t mid = 8 * n;
  std::mt19937_64 rng(5);
  for (std::uint64_t w = 0; w < n; ++w) {
    std::uint64_t off = rng() % (16 * n);
    if (off + 4 > mid && off < mid + 4) off = (off + 8) % (16 * n);
    must(m.do_mmap(*p, slot(w), 4, RW, true, f, pgoff_t{off}), "mmap");
  }
  must(m.do_mmap(*p, slot(n), 4, RW, true, f, pgoff_t{mid}), "mmap");
  must(m.access(*p, slot(n), false), "read");
  auto& page = folio_at(m, *p, slot(n));
  mm::rmap_walk_control rwc;
  rwc.rmap_one = [](mm::folio&, mm::vm_area_struct&, vaddr_t) { return true; };
  const auto before = m.stats();
  const auto reps = batch(n);
  stopwatch sw;
  for (auto _ : st) {
    sw.start();
    for (std::uint64_t i = 0; i < reps; ++i) m.rmap_walk(page, rwc);
    sw.stop(st);
  }
  const auto walks = static_cast<double>(m.stats().walks - before.walks);
  must(m.stats().vmas_visited - before.vmas_visited == m.stats().walks - before.walks, "one VMA per walk");
  st.counters["entries/walk"] = static_cast<double>(m.stats().entries - before.entries) / walks;
  sw.per(st, "ns/walk", walks);
  m.exit_mm(p);
  m.file_put(f);
}

/// The KSM headline of 4.13 (Andrea Arcangeli, 2016: migrating one KSM page shared a
/// million times took over a minute): N equal pages of one process, merged by ksmd, then
/// one KSM page migrated, again and again. Under ksm-chains it has at most 256 mappings;
/// under ksm-flat all N. Counters: the page's mappings and the PTEs each migration moved.
void ksm_migrate(benchmark::State& st, std::string design) {
  const auto n = static_cast<std::uint64_t>(st.range(0));
  mm::machine m(design);
  auto* p = m.mm_alloc("P");
  const std::uint64_t per_vma = std::min<std::uint64_t>(n, 65536);
  for (std::uint64_t v = 0; v * per_vma < n; ++v) {
    const std::uint64_t pages = std::min(per_vma, n - v * per_vma);
    must(m.do_mmap(*p, slot(v), pages, RW, false, nullptr, pgoff_t{0}), "mmap");
    for (std::uint64_t i = 0; i < pages; ++i) must(m.access(*p, page_addr(slot(v), i), true, 0x42), "write");
    must(m.do_madvise(*p, slot(v), pages, mm::madv::mergeable), "madvise");
  }
  m.ksm_run_to_fixpoint();
  pfn_t page = folio_at(m, *p, slot(0)).pfn;
  must(m.folio_of(page).is_ksm(), "a KSM page");
  const auto mappings = m.folio_of(page).mapcount;
  const auto before = m.stats();
  stopwatch sw;
  for (auto _ : st) {
    sw.start();
    auto moved = m.migrate_folio(page);
    sw.stop(st);
    must(moved.has_value(), "migrated");
    page = *moved;
  }
  st.counters["mappings"] = static_cast<double>(mappings);
  st.counters["ptes/migration"] = static_cast<double>(m.stats().ptes_examined - before.ptes_examined) / iters(st);
  sw.per(st, "us/migration", iters(st) * 1000);
  m.exit_mm(p);
}

/// folio_referenced(): the walk plus page_vma_mapped and the young-bit test per VMA.
void folio_referenced(benchmark::State& st, std::string design) {
  const auto sharers = static_cast<std::uint64_t>(st.range(0));
  shared_page w(design, shared_page::kind::anon, sharers);
  auto& f = w.folio();
  const auto before = w.m.stats();
  const auto reps = batch(sharers);
  stopwatch sw;
  for (auto _ : st) {
    sw.start();
    for (std::uint64_t i = 0; i < reps; ++i) benchmark::DoNotOptimize(w.m.folio_referenced(f));
    sw.stop(st);
  }
  sw.per(st, "ns/vma", static_cast<double>(w.m.stats().vmas_visited - before.vmas_visited));
}

/// try_to_unmap() of a page in the swap cache mapped by K processes: every PTE becomes a
/// swap entry. Each process then faults it back in (untimed) for the next iteration.
void try_to_unmap(benchmark::State& st, std::string design) {
  const auto sharers = static_cast<std::uint64_t>(st.range(0));
  shared_page w(design, shared_page::kind::anon, sharers);
  auto& f = w.folio();
  must(w.m.add_to_swap(f), "add_to_swap");
  const auto before = w.m.stats();
  stopwatch sw;
  for (auto _ : st) {
    sw.start();
    bool ok = w.m.try_to_unmap(f);
    sw.stop(st);
    must(ok, "try_to_unmap");
    for (auto* q : w.procs) must(w.m.access(*q, slot(0), false), "swap-in");
    must(&w.folio() == &f && f.mapcount == static_cast<int>(sharers), "the swap-cache page mapped again");
  }
  sw.per(st, "ns/vma", static_cast<double>(w.m.stats().vmas_visited - before.vmas_visited));
}

/// migrate_folio() of a page mapped by K processes (try_to_migrate, copy, remove_migration_ptes).
void migrate(benchmark::State& st, std::string design) {
  const auto sharers = static_cast<std::uint64_t>(st.range(0));
  shared_page w(design, shared_page::kind::anon, sharers);
  const auto before = w.m.stats();
  const auto reps = batch(sharers);
  stopwatch sw;
  for (auto _ : st) {
    pfn_t at = w.procs[0]->pgd.get(slot(0)).pfn();
    sw.start();
    for (std::uint64_t i = 0; i < reps; ++i) {
      auto to = w.m.migrate_folio(at);
      must(to.has_value(), "migrate_folio");
      at = *to;
    }
    sw.stop(st);
  }
  sw.per(st, "ns/vma", static_cast<double>(w.m.stats().vmas_visited - before.vmas_visited));
}

// ---- the interval tree --------------------------------------------------------------------

struct itnode {
  std::uint64_t start = 0, last = 0;
  rmapkit::interval_tree_node hook;
};
struct itnode_traits {
  static std::uint64_t start(const itnode& n) { return n.start; }
  static std::uint64_t last(const itnode& n) { return n.last; }
};
using itree = rmapkit::interval_tree<itnode, &itnode::hook, itnode_traits>;

/// @n VMA-like intervals: starts spread over 16 n page offsets, 1 to 16 pages long.
std::vector<itnode> intervals(std::uint64_t n) {
  std::mt19937_64 rng(42);
  std::vector<itnode> v(n);
  for (auto& x : v) {
    x.start = rng() % (16 * n);
    x.last = x.start + rng() % 16;
  }
  return v;
}

void itree_insert(benchmark::State& st) {
  const auto n = static_cast<std::uint64_t>(st.range(0));
  auto nodes = intervals(n);
  stopwatch sw;
  for (auto _ : st) {
    itree t;
    sw.start();
    for (auto& x : nodes) t.insert(x);
    sw.stop(st);
    t.clear();
  }
  sw.per(st, "ns/node", static_cast<double>(n) * iters(st));
}

/// Removing every node of a tree that holds them all, in a shuffled order.
template <typename Tree, typename Node>
void erase_all(benchmark::State& st, std::vector<Node>& nodes) {
  std::vector<Node*> order;
  for (auto& x : nodes) order.push_back(&x);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(7));
  stopwatch sw;
  for (auto _ : st) {
    Tree t;
    for (auto& x : nodes) t.insert(x);
    sw.start();
    for (auto* x : order) t.remove(*x);
    sw.stop(st);
    must(t.empty(), "an empty tree");
  }
  sw.per(st, "ns/node", static_cast<double>(nodes.size()) * iters(st));
}

void itree_erase(benchmark::State& st) {
  auto nodes = intervals(static_cast<std::uint64_t>(st.range(0)));
  erase_all<itree>(st, nodes);
}

/// 1,000 random page offsets over the intervals' range.
std::vector<std::uint64_t> query_points(std::uint64_t n) {
  std::vector<std::uint64_t> points(1000);
  std::mt19937_64 rng(9);
  for (auto& p : points) p = rng() % (16 * n);
  return points;
}

/// Point queries (what an rmap walk asks): every overlapping node of 1,000 random offsets.
void itree_query(benchmark::State& st) {
  const auto n = static_cast<std::uint64_t>(st.range(0));
  auto nodes = intervals(n);
  itree t;
  for (auto& x : nodes) t.insert(x);
  const auto points = query_points(n);
  std::uint64_t hits = 0;
  stopwatch sw;
  for (auto _ : st) {
    sw.start();
    for (auto q : points)
      for (auto* x = t.iter_first(q, q); x; x = t.iter_next(*x, q, q)) ++hits;
    sw.stop(st);
  }
  benchmark::DoNotOptimize(hits);
  t.clear();
  const auto queries = static_cast<double>(points.size()) * static_cast<double>(st.iterations());
  st.counters["hits/query"] = static_cast<double>(hits) / queries;
  sw.per(st, "ns/query", queries);
}

// ---- the prio tree (2.6.7's i_mmap), on the same intervals --------------------------------

using ptree = rmapkit::prio_tree<itnode>;
using ptnode = rmapkit::prio_tree_node<itnode>;

std::vector<ptnode> prio_nodes(std::vector<itnode>& items) {
  std::vector<ptnode> v(items.size());
  for (std::size_t i = 0; i < items.size(); ++i)
    v[i] = {.item = &items[i], .start = items[i].start, .last = items[i].last};
  return v;
}

void ptree_insert(benchmark::State& st) {
  auto items = intervals(static_cast<std::uint64_t>(st.range(0)));
  auto nodes = prio_nodes(items);
  stopwatch sw;
  for (auto _ : st) {
    ptree t;
    sw.start();
    for (auto& x : nodes) t.insert(x);
    sw.stop(st);
    for (auto& x : nodes) t.remove(x);
  }
  sw.per(st, "ns/node", static_cast<double>(nodes.size()) * iters(st));
}

void ptree_erase(benchmark::State& st) {
  auto items = intervals(static_cast<std::uint64_t>(st.range(0)));
  auto nodes = prio_nodes(items);
  erase_all<ptree>(st, nodes);
}

/// The same 1,000 point queries as itree_query.
void ptree_query(benchmark::State& st) {
  const auto n = static_cast<std::uint64_t>(st.range(0));
  auto items = intervals(n);
  auto nodes = prio_nodes(items);
  ptree t;
  for (auto& x : nodes) t.insert(x);
  const auto points = query_points(n);
  std::uint64_t hits = 0;
  stopwatch sw;
  for (auto _ : st) {
    sw.start();
    for (auto q : points)
      t.for_each_overlap(q, q, [&hits](itnode&) {
        ++hits;
        return true;
      });
    sw.stop(st);
  }
  benchmark::DoNotOptimize(hits);
  for (auto& x : nodes) t.remove(x);
  sw.per(st, "ns/query", static_cast<double>(points.size()) * iters(st));
}

// ---- large folios: 2 MiB as 512 order-0 folios, 32 of 64 KiB, or one PMD-mapped ----------
// The kernel's time for the same work: `rmapkit bench --kernel-only` of
// bench/scenarios/thp-order0.rmap, thp-64k.rmap and thp-pmd.rmap (docs/performance.md).

/// P with a `huge` 2 MiB region at slot 0 (linux-6: the design that takes large folios),
/// anonymous folios of @order only (0: no large folios), every page written.
mm::mm_struct* thp_region(mm::machine& m, unsigned order, bool write = true) {
  if (order > 0) m.set_thp_anon_orders(static_cast<std::uint16_t>(1U << order));
  auto* p = m.mm_alloc("P");
  must(m.do_mmap(*p, slot(0), mm::HPAGE_PMD_NR, RW, false, nullptr, pgoff_t{0}), "mmap");
  must(m.do_madvise(*p, slot(0), mm::HPAGE_PMD_NR, mm::madv::hugepage), "madvise hugepage");
  if (write)
    for (std::uint64_t i = 0; i < mm::HPAGE_PMD_NR; ++i)
      must(m.access(*p, page_addr(slot(0), i), true, i + 1), "write");
  must(!write || order != mm::PMD_ORDER || p->pgd.huge_pmd(slot(0)).has_value(), "a PMD-mapped folio");
  return p;
}

/// The folios that map the region, each once.
std::vector<mm::folio*> thp_folios(mm::machine& m, const mm::mm_struct& p) {
  std::vector<mm::folio*> out;
  p.pgd.for_each_mapped(slot(0), page_addr(slot(0), mm::HPAGE_PMD_NR), [&](vaddr_t, mm::pte_t pte, bool) {
    mm::folio& f = m.page_folio(pte.pfn());
    if (out.empty() || out.back() != &f) out.push_back(&f);
  });
  return out;
}

/// Writing every page of the region: 512 faults, 32, or one.
void thp_fault(benchmark::State& st) {
  const auto order = static_cast<unsigned>(st.range(0));
  stopwatch sw;
  for (auto _ : st) {
    mm::machine m("linux-6");
    auto* p = thp_region(m, order, false);
    sw.start();
    for (std::uint64_t i = 0; i < mm::HPAGE_PMD_NR; ++i)
      must(m.access(*p, page_addr(slot(0), i), true, i + 1), "write");
    sw.stop(st);
  }
  st.counters["folios"] = static_cast<double>(mm::HPAGE_PMD_NR >> order);
  sw.per(st, "ns/page", static_cast<double>(mm::HPAGE_PMD_NR) * iters(st));
}

/// fork of a process whose one region is the written 2 MiB: 512 PTEs copied, or one PMD.
void thp_fork(benchmark::State& st) {
  const auto order = static_cast<unsigned>(st.range(0));
  stopwatch sw;
  for (auto _ : st) {
    mm::machine m("linux-6");
    auto* p = thp_region(m, order);
    sw.start();
    auto* c = m.dup_mm(*p, "C");
    sw.stop(st);
    benchmark::DoNotOptimize(c);
  }
  sw.per(st, "ns/page", static_cast<double>(mm::HPAGE_PMD_NR) * iters(st));
}

/// An rmap walk of every folio of the region, shared with a fork child: each walk visits
/// both mappings and looks at the page table once per mapping (page_vma_mapped()).
void thp_walk(benchmark::State& st) {
  const auto order = static_cast<unsigned>(st.range(0));
  mm::machine m("linux-6");
  auto* p = thp_region(m, order);
  m.dup_mm(*p, "C");
  const auto folios = thp_folios(m, *p);
  std::uint64_t hits = 0;
  mm::rmap_walk_control rwc;
  rwc.rmap_one = [&](mm::folio& f, mm::vm_area_struct& vma, vaddr_t a) {
    hits += m.page_vma_mapped(f, vma, a) ? 1U : 0U;
    return true;
  };
  stopwatch sw;
  for (auto _ : st) {
    sw.start();
    for (auto* f : folios) m.rmap_walk(*f, rwc);
    sw.stop(st);
  }
  must(hits == 2 * folios.size() * static_cast<std::uint64_t>(st.iterations()), "both mappings of every folio");
  st.counters["folios"] = static_cast<double>(folios.size());
  sw.per(st, "ns/page", static_cast<double>(mm::HPAGE_PMD_NR) * iters(st));
}

// ---- registration -------------------------------------------------------------------------

using args = std::vector<std::int64_t>;

/// Registers @name with each argument list; smoke runs get @tiny, full runs @full.
template <typename F>
void add(const std::string& name, F&& f, const std::vector<args>& full, const std::vector<args>& tiny,
         double min_time = 0.2) {
  auto* b = benchmark::RegisterBenchmark(name.c_str(), std::forward<F>(f));
  for (const auto& a : g_smoke ? tiny : full) b->Args(a);
  b->UseManualTime()->Unit(benchmark::kMicrosecond);
  if (!g_smoke) b->MinTime(min_time);
}

void register_all() {
  const std::vector<args> fork_shapes = {{1, 1},   {1, 256},   {10, 1},   {10, 256},
                                         {100, 1}, {100, 256}, {1000, 1}, {1000, 256}};
  const std::vector<args> tiny_shapes = {{1, 1}, {3, 4}};
  const std::vector<args> sharers = {{1}, {4}, {16}, {64}, {256}, {1024}};
  const std::vector<args> tiny_sharers = {{1}, {3}};
  for (std::string_view dv : mm::anon_rmap_designs()) {
    const std::string d(dv);
    add("anon_fault/" + d, [d](benchmark::State& st) { anon_fault(st, d); }, {{4096}}, {{8}});
    add("cow_copy/" + d, [d](benchmark::State& st) { cow_copy(st, d); }, {{4096}}, {{8}});
    add("cow_reuse/" + d, [d](benchmark::State& st) { cow_reuse(st, d); }, {{4096}}, {{8}});
    add(
        "fork/" + d, [d](benchmark::State& st) { fork_nm(st, d); }, fork_shapes, tiny_shapes);
    add(
        "exit/" + d, [d](benchmark::State& st) { exit_nm(st, d); }, fork_shapes, tiny_shapes);
    add("munmap/" + d, [d](benchmark::State& st) { munmap_nm(st, d); },
        {{1, 256, 0}, {1, 256, 1}, {100, 256, 0}, {100, 256, 1}, {1000, 1, 0}, {1000, 1, 1}}, {{2, 4, 0}, {2, 4, 1}});
    add("mremap_move/" + d, [d](benchmark::State& st) { mremap_move(st, d); }, {{1}, {256}, {4096}}, {{4}});
    add(
        "rmap_walk_anon/" + d, [d](benchmark::State& st) { rmap_walk(st, d, shared_page::kind::anon); }, sharers,
        tiny_sharers);
    add(
        "walk_vs_baseline/anon/" + d,
        [d](benchmark::State& st) { walk_vs_baseline(st, d, shared_page::kind::anon, anon_design_floor(d)); }, sharers,
        tiny_sharers);
    // KSM: up to max_page_sharing (256) mappings per KSM page.
    add("rmap_walk_ksm/" + d, [d](benchmark::State& st) { rmap_walk(st, d, shared_page::kind::ksm); },
        {{2}, {16}, {64}, {256}}, {{2}});
    add(
        "folio_referenced/" + d, [d](benchmark::State& st) { folio_referenced(st, d); }, sharers, tiny_sharers);
    add(
        "try_to_unmap/" + d, [d](benchmark::State& st) { try_to_unmap(st, d); }, {{1}, {16}, {256}}, tiny_sharers);
    add(
        "migrate_folio/" + d, [d](benchmark::State& st) { migrate(st, d); }, {{1}, {16}, {256}}, tiny_sharers);
  }
  // File pages do not depend on the anonymous rmap design: on the file design alone.
  add("file_fault", [](benchmark::State& st) { file_fault(st); }, {{4096}}, {{40}});
  for (std::string_view fv : mm::file_rmap_designs()) {
    const std::string d = mm::rmap_design_name{std::string(mm::anon_rmap_designs().front()), std::string(fv)}.full();
    const std::string suffix = fv == mm::file_rmap_designs().front() ? "" : "/" + std::string(fv);
    add(
        "rmap_walk_file" + suffix, [d](benchmark::State& st) { rmap_walk(st, d, shared_page::kind::file); }, sharers,
        tiny_sharers);
    add(
        "walk_vs_baseline/file/" + std::string(fv),
        [d, floor = fv == "interval-tree" ? design_floor::interval_tree : design_floor::none](benchmark::State& st) {
          walk_vs_baseline(st, d, shared_page::kind::file, floor);
        },
        sharers, tiny_sharers);
    add("rmap_walk_file_windows/" + std::string(fv), [d](benchmark::State& st) { rmap_walk_file_windows(st, d); },
        {{16}, {256}, {4096}}, {{4}});
  }
  for (std::string_view k : mm::ksm_rmap_designs()) {
    const std::string d = mm::rmap_design_name{"linux-6", "interval-tree", std::string(k)}.full();
    add("ksm_migrate/" + std::string(k), [d](benchmark::State& st) { ksm_migrate(st, d); },
        {{256}, {4096}, {65536}, {1048576}}, {{300}});
  }
  // Large folios: the same 2 MiB as order 0, 64 KiB (order 4) and PMD (order 9).
  const std::vector<args> thp_orders = {{0}, {4}, {mm::PMD_ORDER}};
  add("thp_fault", thp_fault, thp_orders, thp_orders);
  add("thp_fork", thp_fork, thp_orders, thp_orders);
  add("thp_walk", thp_walk, thp_orders, thp_orders);
  const std::vector<args> sizes = {{1000}, {10000}, {100000}, {1000000}};
  add("itree_insert", itree_insert, sizes, {{100}});
  add("itree_erase", itree_erase, sizes, {{100}});
  add("itree_query", itree_query, sizes, {{100}});
  add("ptree_insert", ptree_insert, sizes, {{100}});
  add("ptree_erase", ptree_erase, sizes, {{100}});
  add("ptree_query", ptree_query, sizes, {{100}});
}

}  // namespace

int main(int argc, char** argv) { return rmapkit::bench::benchmark_main(argc, argv, g_smoke, register_all); }
