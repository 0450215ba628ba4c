// The model back end. Each statement becomes the system calls the kernel runner's agent
// makes, on the model's machine; `check` reads the machine back as /proc would show it.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "rmapkit/mm/content.h"
#include "rmapkit/model/model.h"
#include "rmapkit/model/session.h"
#include "rmapkit/scenario/report.h"

namespace rmapkit::model {

namespace sc = rmapkit::scenario;
using scenario::statement_error;

namespace {

int prot_bits(sc::prot p) {
  switch (p) {
    case sc::prot::rw: return mm::PROT_READ_ | mm::PROT_WRITE_;
    case sc::prot::r: return mm::PROT_READ_;
    case sc::prot::none: return mm::PROT_NONE_;
    case sc::prot::rx: return mm::PROT_READ_ | mm::PROT_EXEC_;
    case sc::prot::rwx: return mm::PROT_READ_ | mm::PROT_WRITE_ | mm::PROT_EXEC_;
  }
  return mm::PROT_NONE_;
}

mm::madv to_madv(sc::advice a) {
  switch (a) {
    case sc::advice::dontneed: return mm::madv::dontneed;
    case sc::advice::mergeable: return mm::madv::mergeable;
    case sc::advice::unmergeable: return mm::madv::unmergeable;
    case sc::advice::pageout: return mm::madv::pageout;
    case sc::advice::dontfork: return mm::madv::dontfork;
    case sc::advice::dofork: return mm::madv::dofork;
    case sc::advice::wipeonfork: return mm::madv::wipeonfork;
    case sc::advice::keeponfork: return mm::madv::keeponfork;
    case sc::advice::dontdump: return mm::madv::dontdump;
    case sc::advice::dodump: return mm::madv::dodump;
    case sc::advice::sequential: return mm::madv::sequential;
    case sc::advice::random: return mm::madv::random;
    case sc::advice::normal: return mm::madv::normal;
    case sc::advice::free: return mm::madv::free;
    case sc::advice::cold: return mm::madv::cold;
    case sc::advice::willneed: return mm::madv::willneed;
    case sc::advice::remove: return mm::madv::remove;
    case sc::advice::collapse: return mm::madv::collapse;
  }
  throw std::logic_error(fmt::format("madvise {} has no model counterpart", sc::to_string(a)));
}

mm::clear_refs_type clear_refs_of(sc::clear_refs_type t) {
  switch (t) {
    case sc::clear_refs_type::all: return mm::clear_refs_type::all;
    case sc::clear_refs_type::anon: return mm::clear_refs_type::anon;
    case sc::clear_refs_type::file: return mm::clear_refs_type::mapped;
  }
  return mm::clear_refs_type::all;
}

/// The figures as smaps prints them (__show_smap()): bytes to kB, and the fixed-point
/// proportional sums shifted down first, each rounded down on its own.
sc::smaps_values smaps_kb(const mm::mem_size_stats& m) {
  auto kb = [](std::uint64_t bytes) { return bytes >> 10; };
  auto pss_kb = [&](std::uint64_t fixed) { return kb(fixed >> mm::mem_size_stats::PSS_SHIFT); };
  return {kb(m.resident),      pss_kb(m.pss),       pss_kb(m.pss_dirty), kb(m.shared_clean), kb(m.shared_dirty),
          kb(m.private_clean), kb(m.private_dirty), kb(m.referenced),    kb(m.anonymous),    kb(m.ksm),
          kb(m.lazyfree),      kb(m.anonymous_thp), kb(m.swap),          pss_kb(m.swap_pss), pss_kb(m.pss_locked)};
}

/// The `report flags` bits of a folio: its own flags, as /proc/kpageflags shows them.
std::uint8_t page_life(const mm::folio& f) {
  static constexpr std::pair<mm::folio_flag, sc::page_life> bits[] = {
      {mm::folio_flag::referenced, sc::page_life::referenced},
      {mm::folio_flag::dirty, sc::page_life::dirty},
      {mm::folio_flag::lru, sc::page_life::lru},
      {mm::folio_flag::active, sc::page_life::active},
      {mm::folio_flag::unevictable, sc::page_life::unevictable},
      {mm::folio_flag::mlocked, sc::page_life::mlocked}};
  std::uint8_t out = 0;
  for (const auto& [from, to] : bits)
    if (f.test(from)) out = static_cast<std::uint8_t>(out | sc::bit(to));
  return out;
}

/// A write without a value is unique to its statement and page (mm/content.h).
std::uint64_t unique_content(int line, std::uint64_t page) {
  return mm::content::unique((static_cast<std::uint64_t>(line) << 32) | page);
}

/// The VMAs of the slot that starts at @base, in address order.
std::vector<mm::vm_area_struct*> slot_vmas(const mm::mm_struct& mm, vaddr_t base) {
  std::vector<mm::vm_area_struct*> out;
  for (auto it = mm.mm_mt.lower_bound(base.value); it != mm.mm_mt.end() && it->first < base.value + sc::SLOT_SIZE; ++it)
    out.push_back(it->second);
  return out;
}

}  // namespace

/// Carries out statements on the machine: each becomes the system calls the kernel
/// runner's agent makes. It holds the scenario's references (processes, files) and where
/// each region is now.
class statement_runner {
 public:
  using region_map = std::map<std::string, vaddr_t>;
  statement_runner(mm::machine& m, const sc::program& prog, const run_options& opts) : _m(m), _prog(prog), _opts(opts) {
    _mms.resize(prog.process_names.size());
    _files.resize(prog.file_names.size());
    _regions.resize(prog.process_names.size());
  }

  ~statement_runner() {
    for (auto* mm : _mms)
      if (mm) _m.exit_mm(mm);
    for (auto* f : _files)
      if (f) _m.file_put(f);
    // After the run ksmd drops the exited mms' rmap_items, as the kernel runner lets it.
    _m.ksm_drop_exited();
  }

  statement_runner(const statement_runner&) = delete;
  statement_runner& operator=(const statement_runner&) = delete;

  void exec(const sc::op& o, std::ostream& out, std::ostream& err) {
    _line = o.line;
    _out = &out;
    _err = &err;
    _m.lru_add_drain();  // as the kernel runner does before every statement
    std::visit([&](const auto& body) { step(body); }, o.body);
  }

  [[nodiscard]] mm::mm_struct* mm_at(sc::proc_id p) const { return p < _mms.size() ? _mms[p] : nullptr; }
  [[nodiscard]] mm::address_space* file_at(sc::file_id f) const { return f < _files.size() ? _files[f] : nullptr; }
  [[nodiscard]] const region_map& regions_at(sc::proc_id p) const {
    static const region_map none;
    const auto& r = _regions.at(p);
    return r ? *r : none;
  }

 private:
  mm::mm_struct& mm_of(sc::proc_id p) { return *_mms.at(p); }

  // The model's own refusal, worded as the kernel runner words the kernel's, so that `diff`
  // compares them; it never claims to be the kernel.
  static void refused(const char* what, int r) {
    if (r < 0) throw statement_error(fmt::format("{}: refused: {}", what, std::strerror(-r)));
  }

  void each_page(sc::proc_id p, const sc::page_span& s, bool write, const std::optional<std::uint8_t>& value) {
    for (std::uint64_t i = 0; i < s.pages; ++i) {
      std::uint64_t content = value ? mm::content::filled(*value) : unique_content(_line, s.index + i);
      const auto faults = _m.event_count(mm::vm_event::pgfault);
      const int r = _m.access(mm_of(p), page_addr(s.start, i), write, content);
      if (_opts.on_access)
        _opts.on_access(p, page_addr(s.start, i), write, r < 0 || _m.event_count(mm::vm_event::pgfault) != faults);
      refused(write ? "write" : "read", r);
    }
  }

  void step(const sc::op_spawn& o) { _mms[o.proc] = _m.mm_alloc(_prog.process_names[o.proc]); }
  void step(const sc::op_file& o) {
    _files[o.file] = _m.memfd_create(_prog.file_names[o.file], o.pages, mm::content::file_key(o.file));
  }
  void step(const sc::op_mmap& o) {
    regions_to_change(o.proc)[o.region] = o.base;
    bool shared = o.kind == sc::map_kind::anon_shared || o.kind == sc::map_kind::file_shared;
    mm::address_space* file = o.file ? _files.at(*o.file) : nullptr;
    const mm::mmap_flags flags{o.fixed ? mm::map_fixed::replace : mm::map_fixed::noreplace, o.noreserve, !o.huge};
    refused("mmap",
            _m.do_mmap(mm_of(o.proc), o.start(), o.pages, prot_bits(o.prot), shared, file, pgoff_t{o.offset}, flags));
    // The kernel runner's agent madvises MADV_HUGEPAGE right after a `huge` mmap.
    if (o.huge) refused("mmap", _m.do_madvise(mm_of(o.proc), o.start(), o.pages, mm::madv::hugepage));
  }
  void step(const sc::op_read& o) {
    each_page(o.proc, o.span, _opts.plant == planted_fault::read_as_write, std::nullopt);
  }
  void step(const sc::op_write& o) { each_page(o.proc, o.span, true, o.value); }
  void step(const sc::op_fork& o) {
    _mms[o.child] = _m.dup_mm(mm_of(o.parent), _prog.process_names[o.child]);
    _regions[o.child] = _regions[o.parent];  // shared until one of them changes it
  }
  void step(const sc::op_exit& o) {
    _m.exit_mm(_mms[o.proc]);
    _mms[o.proc] = nullptr;
    _regions[o.proc].reset();
  }
  void step(const sc::op_munmap& o) { refused("munmap", _m.do_munmap(mm_of(o.proc), o.span.start, o.span.pages)); }
  void step(const sc::op_mprotect& o) {
    refused("mprotect", _m.do_mprotect(mm_of(o.proc), o.span.start, o.span.pages, prot_bits(o.prot)));
  }
  void step(const sc::op_mremap_resize& o) {
    auto vmas = slot_vmas(mm_of(o.proc), o.base);
    if (vmas.size() != 1 || vmas[0]->vm_start != o.base || vmas[0]->vm_end != page_addr(o.base, o.old_pages))
      throw statement_error(fmt::format("mremap: the region is not one VMA covering pages 0 to {}", o.old_pages - 1));
    refused("mremap", _m.do_mremap_resize(mm_of(o.proc), o.base, o.old_pages, o.new_pages));
  }
  void step(const sc::op_mremap_move& o) {
    auto& mm = mm_of(o.proc);
    // VMA by VMA, each to the same offset from the new base (as the kernel runner does).
    std::vector<std::pair<vaddr_t, std::uint64_t>> moves;
    for (auto* v : slot_vmas(mm, o.old_base)) moves.emplace_back(v->vm_start, v->pages());
    for (auto [start, pages] : moves)
      refused("mremap",
              _m.do_mremap_move(mm, start, pages, vaddr_t{o.new_base.value + (start.value - o.old_base.value)}));
    for (auto& [name, base] : regions_to_change(o.proc))
      if (base == o.old_base) base = o.new_base;
  }
  void step(const sc::op_madvise& o) {
    auto what = fmt::format("madvise {}", sc::to_string(o.advice));
    if (o.advice == sc::advice::collapse) collapse_modelled(o);
    refused(what.c_str(), _m.do_madvise(mm_of(o.proc), o.span.start, o.span.pages, to_madv(o.advice)));
  }
  /// The model collapses anonymous memory; shmem and file collapse (collapse_file()) and
  /// KSM pages in the range it refuses.
  void collapse_modelled(const sc::op_madvise& o) {
    const auto& mm = mm_of(o.proc);
    const vaddr_t end = page_addr(o.span.start, o.span.pages);
    for (auto it = mm.mm_mt.begin(); it != mm.mm_mt.end(); ++it) {
      const auto* v = it->second;
      if (v->vm_end <= o.span.start || v->vm_start >= end) continue;
      if (v->vm_file)
        throw not_modelled("madvise collapse: of shmem or file pages, not modelled yet; " + KERNEL_RUNS_IT);
      bool ksm = false;
      mm.pgd.for_each(std::max(v->vm_start, o.span.start), std::min(v->vm_end, end), [&](vaddr_t, mm::pte_t pte) {
        ksm = ksm || (pte.present() && pte.pfn() != _m.zero_pfn() && _m.folio_of(pte.pfn()).is_ksm());
      });
      if (ksm) throw not_modelled("madvise collapse: of KSM pages, not modelled yet; " + KERNEL_RUNS_IT);
    }
  }
  void step(const sc::op_mlock& o) { refused("mlock", _m.do_mlock(mm_of(o.proc), o.span.start, o.span.pages, true)); }
  void step(const sc::op_munlock& o) {
    refused("munlock", _m.do_mlock(mm_of(o.proc), o.span.start, o.span.pages, false));
  }
  void step(const sc::op_ksm& o) {
    _m.ksm_run_to_fixpoint(o.prune);
    if (!_opts.ksm_counters) return;
    auto k = _m.ksm_counters();
    const sc::ksm_counters c{k.pages_shared,   k.pages_sharing,      k.pages_unshared,
                             k.pages_volatile, k.stable_node_chains, k.stable_node_dups};
    if (_opts.on_ksm_counters) _opts.on_ksm_counters(_line, c);
    else *_err << sc::format(_line, c);
  }
  void step(const sc::op_reclaim&) {
    // Refused while a KSM page exists: the kernel gives no stable result for it. The
    // first one is named in the order the kernel runner looks (process, address).
    for (std::size_t id = 0; id < _mms.size(); ++id) {
      auto* mm = _mms[id];
      if (!mm) continue;
      std::optional<vaddr_t> ksm_at;
      mm->pgd.for_each(sc::slot_start(0), sc::slot_start(_prog.slot_count), [&](vaddr_t a, mm::pte_t pte) {
        if (!ksm_at && pte.present() && pte.pfn() != _m.zero_pfn() && _m.folio_of(pte.pfn()).is_ksm()) ksm_at = a;
      });
      if (ksm_at)
        throw statement_error(
            fmt::format("reclaim: refused while KSM pages exist ({} at {})", _prog.process_names[id], *ksm_at));
    }
    // The kernel runner clears every process's accessed bits before each reclaim pass
    // (/proc/PID/clear_refs), so that pages of several sharers do not stay active; the
    // pages reclaim keeps (mlocked ones) are left old and unreferenced by it.
    for (auto* mm : _mms)
      if (mm) _m.clear_refs(*mm, mm::clear_refs_type::all);
    _m.shrink_all();
    if (const std::uint64_t left = pages_reclaim_left())
      throw statement_error(fmt::format("reclaim: {} pages could not be reclaimed", left));
  }
  /// What the kernel runner counts when it gives up on a `reclaim`: each present page of a
  /// process (the zero pages aside) whose frame no VM_LOCKED VMA maps. The kernel cannot
  /// reclaim a shmem large folio that a locked VMA maps in part, so the runner refuses the
  /// statement; the model says the same.
  std::uint64_t pages_reclaim_left() const {
    std::set<std::uint64_t> locked;
    std::vector<std::uint64_t> present;
    for (auto* mm : _mms) {
      if (!mm) continue;
      for (auto it = mm->mm_mt.begin(); it != mm->mm_mt.end(); ++it) {
        const auto* v = it->second;
        const bool vm_locked = v->vm_flags.has(mm::vm_flag::locked);
        mm->pgd.for_each_mapped(v->vm_start, v->vm_end, [&](vaddr_t, mm::pte_t pte, bool) {
          if (!pte.present() || _m.is_zero_pfn(pte.pfn())) return;
          if (vm_locked) locked.insert(pte.pfn().value);
          present.push_back(pte.pfn().value);
        });
      }
    }
    return static_cast<std::uint64_t>(std::ranges::count_if(present, [&](auto p) { return !locked.contains(p); }));
  }
  void step(const sc::op_clear_refs& o) { _m.clear_refs(mm_of(o.proc), clear_refs_of(o.type)); }
  void step(const sc::op_report&) {}  // it changes what later checks print: op_check::smaps, flags
  /// Version 2: the model has anonymous and shmem large folios, mapped by PTEs or by a
  /// PMD, under every design. What it does not model yet it refuses at the statement,
  /// saying so, rather than printing 4 KiB answers to a large-folio question.
  void step(const sc::op_thp& o) {
    if (o.anon_orders == 0 && o.shmem_orders == 0) return;  // `anon=none`, no shmem sizes: no folio will be large
    if (_opts.migrate_everything)
      throw not_modelled("thp: migration of large folios is not modelled yet; " + KERNEL_RUNS_IT);
    _m.set_thp_anon_orders(o.anon_orders);
    _m.set_thp_shmem_orders(o.shmem_orders);
  }
  /// Lazily freed folios are reclaimed and the deferred-split queue is run: every
  /// partially mapped large folio is split.
  void step(const sc::op_shrink&) { _m.shrink_memcg_file(); }
  inline static const std::string KERNEL_RUNS_IT = "`rmapkit kernel` runs this scenario";
  void step(const sc::op_check& c) {
    if (_opts.on_check) _opts.on_check(report(c));
    else *_out << sc::format(report(c)) << std::flush;
  }

  sc::report_block report(const sc::op_check& c) const {
    return check_report(_m, c,
                        {[this](sc::proc_id p) -> const mm::mm_struct* { return mm_at(p); },
                         [](const mm::address_space& f) { return f.name; }});
  }

  mm::machine& _m;
  const sc::program& _prog;
  const run_options& _opts;
  std::ostream* _out = nullptr;  // the current statement's report stream
  std::ostream* _err = nullptr;  // and its error stream (KSM counters)
  int _line = 0;
  std::vector<mm::mm_struct*> _mms;
  std::vector<mm::address_space*> _files;
  // By proc_id: region name -> base. A child shares its parent's until either changes it:
  // copying hundreds of named regions at every fork was a tenth of the model's fork time.
  std::vector<std::shared_ptr<region_map>> _regions;
  region_map& regions_to_change(sc::proc_id p) {
    auto& r = _regions[p];
    if (!r) r = std::make_shared<region_map>();
    else if (r.use_count() > 1) r = std::make_shared<region_map>(*r);
    return *r;
  }
};

namespace {

std::string vma_kind(const mm::vm_area_struct& v, const report_source& src) {
  if (!v.vm_file) return "anon";
  if (v.vm_file->anon_shared) return "shmem";
  return fmt::format("file:{}@{}", src.file_name(*v.vm_file), v.vm_pgoff.value);
}

sc::report_page page_of(const mm::machine& m, mm::pte_t pte, bool flags) {
  sc::report_page pg;
  if (pte.is_swap()) {
    pg.state = sc::report_page::state::swap;
    pg.id = pte.swap_entry().val;
    return pg;
  }
  if (pte.pfn() == m.zero_pfn() || pte.pfn() == mm::HUGE_ZERO_PFN) {
    pg.state = sc::report_page::state::zero;
    return pg;
  }
  // The count is the page's own; every flag is the folio's, as kpageflags reads the head's
  // flag word for every page: AnonExclusive too, so a tail shows its head's bit.
  const auto& page = m.folio_of(pte.pfn());
  const auto& f = m.page_folio(pte.pfn());
  pg.id = page.pfn.value;
  pg.count = static_cast<std::uint64_t>(m.precise_page_mapcount(page));
  if (f.is_large()) pg.folio = sc::report_folio{f.pfn.value, f.order, page.pfn.value - f.pfn.value};
  std::uint8_t fl = 0;
  if (f.is_anon()) fl = fl | sc::page_flag::anon;
  if (f.is_ksm()) fl = fl | sc::page_flag::ksm;
  if (f.is_anon() && f.test(mm::folio_flag::anon_exclusive)) fl = fl | sc::page_flag::excl;
  if (f.test(mm::folio_flag::swapcache)) fl = fl | sc::page_flag::swapcache;
  pg.flags = fl;
  if (flags) pg.life = page_life(f);
  return pg;
}

}  // namespace

sc::report_block check_report(const mm::machine& m, const sc::op_check& c, const report_source& src) {
  sc::report_block b{c.label, {}};
  for (const auto& p : c.processes) {
    const auto* mm = src.mm_of(p.proc);
    for (const auto& r : p.regions) {
      sc::report_region rr{p.name, r.name, {}, {}};
      const auto vmas = mm ? slot_vmas(*mm, r.base) : std::vector<mm::vm_area_struct*>{};
      for (const auto* v : vmas) {
        rr.vmas.push_back({pages_between(r.base, v->vm_start), pages_between(r.base, v->vm_end), mm::maps_perms(*v),
                           vma_kind(*v, src), std::nullopt});
        if (c.smaps) rr.vmas.back().smaps = smaps_kb(m.smap_gather_stats(*v));
      }
      for (const auto* v : vmas)
        mm->pgd.for_each_mapped(v->vm_start, v->vm_end, [&](vaddr_t a, mm::pte_t pte, bool pmd) {
          auto pg = page_of(m, pte, c.flags);
          pg.index = pages_between(r.base, a);
          pg.pmd = pmd;
          rr.pages.push_back(pg);
        });
      b.regions.push_back(std::move(rr));
    }
  }
  return b;
}

session::session(const sc::program& prog, run_options opts)
    : _prog(prog), _opts(std::move(opts)), _own(std::make_unique<mm::machine>(_opts.design)), _machine(_own.get()) {
  _runner = std::make_unique<statement_runner>(*_machine, _prog, _opts);
}

session::session(mm::machine& m, const sc::program& prog, run_options opts)
    : _prog(prog), _opts(std::move(opts)), _machine(&m) {
  _runner = std::make_unique<statement_runner>(*_machine, _prog, _opts);
}

session::~session() = default;

mm::mm_struct* session::mm_of(sc::proc_id p) const { return _runner->mm_at(p); }
mm::address_space* session::file_of(sc::file_id f) const { return _runner->file_at(f); }
const std::map<std::string, vaddr_t>& session::regions_of(sc::proc_id p) const { return _runner->regions_at(p); }

int session::step(std::ostream& out, std::ostream& err) {
  if (done()) return 0;
  if (_opts.before_statement) _opts.before_statement(_next);
  const sc::op& o = _prog.ops[_next++];
  try {
    if (_opts.on_statement) {
      const auto t0 = std::chrono::steady_clock::now();
      _runner->exec(o, out, err);
      _opts.on_statement(o, std::chrono::steady_clock::now() - t0);
    } else {
      _runner->exec(o, out, err);
    }
    if (_opts.migrate_everything) _machine->migrate_all();
    if (_opts.check_invariants) {
      if (auto bad = _machine->check_invariants(); !bad.empty()) {
        _failed = true;
        err << sc::diag{_prog.file, o.line, "model invariant broken after this statement: " + bad}.str() << '\n';
        return EXIT_MODEL_BUG;
      }
    }
  } catch (const statement_error& e) {
    _failed = true;
    out << std::flush;
    const sc::diag d{_prog.file, o.line, e.what()};
    if (dynamic_cast<const model::not_modelled*>(&e)) _not_modelled = d;
    err << d.str() << '\n';
    return sc::EXIT_SCENARIO_ERROR;
  } catch (const std::logic_error& e) {
    _failed = true;
    out << std::flush;
    err << sc::diag{_prog.file, o.line, std::string("model bug: ") + e.what()}.str() << '\n';
    return EXIT_MODEL_BUG;
  }
  return 0;
}

std::optional<sc::diag> not_modelled_in(const sc::program& prog, run_options opts) {
  opts.on_check = [](const sc::report_block&) {};  // the reports are not wanted
  opts.on_statement = nullptr;
  opts.before_statement = nullptr;
  std::ostringstream out, err;
  session s(prog, std::move(opts));
  (void)s.run_to(prog.ops.size(), out, err);
  return s.not_modelled();
}

int session::run_to(std::size_t count, std::ostream& out, std::ostream& err) {
  while (!done() && _next < count)
    if (int code = step(out, err); code != 0) return code;
  return 0;
}

namespace {

/// Two sections of `NAME VALUE` lines, each headed by the kernel file whose names it uses, so
/// that every counter line reads the same way.
void print_stats(const mm::machine& m, std::ostream& err) {
  err << "# /proc/vmstat\n";
  for (const auto& [name, n] : m.vmstat()) err << name << ' ' << n << '\n';
  const auto k = m.ksm_counters();
  err << fmt::format(
      "# /sys/kernel/mm/ksm\npages_shared {}\npages_sharing {}\npages_unshared {}\npages_volatile {}\n"
      "stable_node_chains {}\nstable_node_dups {}\nfull_scans {}\n",
      k.pages_shared, k.pages_sharing, k.pages_unshared, k.pages_volatile, k.stable_node_chains, k.stable_node_dups,
      k.full_scans);
}

}  // namespace

int run_on(mm::machine& m, const sc::program& prog, std::ostream& out, std::ostream& err, const run_options& opts) {
  {
    session s(m, prog, opts);
    if (int code = s.run_to(prog.ops.size(), out, err); code != 0) return code;
  }
  if (opts.stats) print_stats(m, err);
  return 0;
}

bool check_invariants_by_default() noexcept {
#ifdef NDEBUG
  return false;
#else
  return true;
#endif
}

std::optional<std::string> teardown_leak(mm::machine& m) {
  m.drop_swap_cache();
  auto l = m.live();
  if (l.total() == 0) return std::nullopt;
  return fmt::format(
      "model leak after teardown: {} mms, {} vmas, {} anon_vmas, {} avcs, {} files, {} folios, {} {} objects", l.mms,
      l.vmas, l.anon_vmas, l.avcs, l.files, l.folios, l.design, m.design_name());
}

int run(const sc::program& prog, std::ostream& out, std::ostream& err, const run_options& opts) {
  mm::machine m(opts.design);
  int code = run_on(m, prog, out, err, opts);
  if (opts.check_invariants && code == 0) {
    if (auto leak = teardown_leak(m)) {
      err << prog.file << ": " << *leak << '\n';
      return EXIT_MODEL_BUG;
    }
  }
  return code;
}

}  // namespace rmapkit::model
