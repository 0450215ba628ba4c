// trace_walk(): runs one operation's rmap walk on the session's machine with a tracer
// set, and turns each mm::walk_step into words with the ids `show` uses.
#include "rmapkit/view/walk.h"

#include <charconv>
#include <unordered_map>

#include <fmt/format.h>

#include "names.h"

namespace rmapkit::view {

using detail::names;
namespace sc = rmapkit::scenario;

walk_op parse_walk_op(const std::string& s) {
  for (auto op : {walk_op::none, walk_op::referenced, walk_op::unmap, walk_op::mkclean, walk_op::migrate})
    if (s == to_string(op)) return op;
  throw view_error(fmt::format("--op {}: unknown operation (none, referenced, unmap, mkclean, migrate)", s));
}

const char* to_string(walk_op op) {
  switch (op) {
    case walk_op::none: return "none";
    case walk_op::referenced: return "referenced";
    case walk_op::unmap: return "unmap";
    case walk_op::mkclean: return "mkclean";
    case walk_op::migrate: return "migrate";
  }
  return "none";
}

namespace {

/// What a PTE holds, in words: this frame, another, the zero page, a swap entry, nothing.
std::string pte_found(mm::pte_t pte, pfn_t self, const mm::machine& m, const names& n) {
  if (pte.none()) return "nothing (pte_none)";
  if (pte.is_migration()) return "a migration entry";
  if (pte.is_swap()) {
    auto id = n.swap_id(pte.swap_entry());
    return id ? fmt::format("a swap entry (swap {})", *id) : std::string("a swap entry");
  }
  if (pte.pfn() == self) return "this frame";
  if (pte.pfn() == m.zero_pfn()) return "the zero page";
  if (m.is_zero_pfn(pte.pfn())) return "the huge zero folio";
  auto id = n.frame_id(pte.pfn());
  return id ? fmt::format("another frame (frame {})", *id) : std::string("another frame");
}

/// The frame @t names, as a pfn; view_error says what is there instead when it is no frame.
pfn_t resolve_target(const model::session& s, const names& n, const walk_target& t) {
  if (t.frame) {
    pfn_t pfn = n.frame_pfn(*t.frame);
    return pfn;
  }
  const std::string& spec = *t.page;
  const auto c1 = spec.find(':'), c2 = spec.rfind(':');
  if (c1 == std::string::npos || c1 == c2)
    throw view_error(fmt::format("--page {}: expected PROCESS:REGION:INDEX", spec));
  const std::string proc = spec.substr(0, c1), region = spec.substr(c1 + 1, c2 - c1 - 1);
  std::uint64_t idx = 0;
  const std::string_view num = std::string_view(spec).substr(c2 + 1);
  if (auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), idx);
      ec != std::errc{} || p != num.data() + num.size())
    throw view_error(fmt::format("--page {}: {} is not a page index", spec, num));
  const auto& procs = s.program().process_names;
  auto it = std::find(procs.begin(), procs.end(), proc);
  if (it == procs.end()) throw view_error(fmt::format("--page {}: no process {} in the scenario", spec, proc));
  const auto pid = static_cast<sc::proc_id>(it - procs.begin());
  const mm::mm_struct* mm = s.mm_of(pid);
  if (!mm) throw view_error(fmt::format("--page {}: process {} is not alive here", spec, proc));
  const auto& regions = s.regions_of(pid);
  auto r = regions.find(region);
  if (r == regions.end()) throw view_error(fmt::format("--page {}: process {} has no region {}", spec, proc, region));
  const vaddr_t addr = page_addr(r->second, idx);
  const mm::pte_t pte = mm->pgd.get(addr);
  if (pte.present() && !s.machine().is_zero_pfn(pte.pfn())) return pte.pfn();
  const mm::vm_area_struct* vma = mm::machine::find_vma(*mm, addr);
  std::string there = !vma ? "no VMA maps it (a hole)"
                           : (pte.present() ? fmt::format("it maps {}, which has no reverse map",
                                                          pte_found(pte, pfn_t{}, s.machine(), n))
                                            : "its PTE holds " + pte_found(pte, pfn_t{}, s.machine(), n));
  throw view_error(fmt::format("--page {}: not mapped to a frame: {}", spec, there));
}

/// Turns the machine's walk steps into words.
class step_printer {
 public:
  step_printer(const mm::machine& m, const names& n, const mm::folio& f,
               std::unordered_map<const void*, std::string> design_ids)
      : _m(m), _n(n), _f(f), _self(f.pfn), _design_ids(std::move(design_ids)) {}

  walk_step_view operator()(const mm::walk_step& s) {
    using k = mm::walk_step::kind;
    walk_step_view v;
    v.kind = kind_name(s.what);
    if (s.vma) v.vma = _n.vma_id(s.vma);
    switch (s.what) {
      case k::start:
        v.object = object(s.name, s.object);
        v.text = fmt::format("start at {}", v.object);
        break;
      case k::lock:
        v.object = object("anon_vma", s.object);
        v.text = fmt::format("{}({})", s.name, object_guess(s.object));
        break;
      case k::query:
        v.object = object_guess(s.object);
        v.text = s.first == 0 && s.last == 0 && std::string_view(s.name).find("head") != std::string_view::npos
                     ? fmt::format("read the list {} of {}", s.name, v.object)
                     : fmt::format("query {} of {} for pgoff [{:#x}, {:#x}]", s.name, v.object, s.first, s.last);
        break;
      case k::source:
        v.text = fmt::format("{}: {} at {:#x}", s.name, s.mm ? s.mm->name : std::string("?"), s.addr.value);
        v.addr = s.addr.value;
        break;
      case k::entry: v.text = entry(s, v); break;
      case k::candidate:
        v.text = candidate(s);
        v.addr = s.addr.value;
        break;
      case k::skip: v.text = skip(s); break;
      case k::pte:
        v.addr = s.addr.value;
        v.ok = s.ok;
        v.text = fmt::format("page_vma_mapped_walk({}, {:#x}): {}", v.vma, s.addr.value, pte_words(s));
        break;
      case k::rmap_one:
        v.ok = s.ok;
        v.text = s.ok ? std::string("rmap_one() returns true: go on") : std::string("rmap_one() returns false: stop");
        break;
      case k::done: v.text = "rwc->done(): nothing left to do, stop"; break;
    }
    return v;
  }

 private:
  static const char* kind_name(mm::walk_step::kind k) {
    using kk = mm::walk_step::kind;
    switch (k) {
      case kk::start: return "start";
      case kk::lock: return "lock";
      case kk::query: return "query";
      case kk::source: return "source";
      case kk::entry: return "entry";
      case kk::candidate: return "candidate";
      case kk::skip: return "skip";
      case kk::pte: return "pte";
      case kk::rmap_one: return "rmap_one";
      case kk::done: return "done";
    }
    return "";
  }

  /// The id of an object a step points at: the machine's anon_vmas, files and stable
  /// nodes, or one of the design's dumped objects.
  std::string object_guess(const void* p) const {
    if (auto it = _design_ids.find(p); it != _design_ids.end()) return it->second;
    for (const auto* av : _n.anon_vmas())
      if (av == p) return fmt::format("anon_vma av{}", _n.anon_vma_id(av));
    for (const auto* as : _n.files())
      if (as == p) return fmt::format("address_space {}", as->name);
    for (const auto* node : _n.ksm().stable)
      if (node == p) return fmt::format("stable_node s{}", _n.stable_node_id(node));
    return "?";
  }
  std::string object(const char* name, const void* p) const {
    std::string id = object_guess(p);
    return id == "?" ? std::string(name) : id;
  }

  std::string entry(const mm::walk_step& s, walk_step_view& v) const {
    if (auto it = _design_ids.find(s.object); it != _design_ids.end()) v.object = it->second;
    std::string what = v.object.empty() ? std::string(s.name) : v.object;
    return s.vma ? fmt::format("entry {} -> {}", what, v.vma) : fmt::format("entry {}", what);
  }

  std::string candidate(const mm::walk_step& s) const {
    const auto& vma = *s.vma;
    const std::string where = fmt::format("{} {}:[{:#x}, {:#x})", _n.vma_id(s.vma), vma.vm_mm->name, vma.vm_start.value,
                                          vma.vm_end.value);
    if (!s.computed) return fmt::format("candidate {}: address {:#x} given by the entry", where, s.addr.value);
    return fmt::format(
        "candidate {}: vma_address = vm_start + ((index - vm_pgoff) << 12) = {:#x} + (({:#x} - {:#x}) << 12) = "
        "{:#x}, inside the VMA",
        where, vma.vm_start.value, _f.index.value, vma.vm_pgoff.value, s.addr.value);
  }

  std::string skip(const mm::walk_step& s) const {
    const auto& vma = *s.vma;
    if (std::string_view(s.name) == "vma_address") {
      const auto idx = static_cast<std::int64_t>(_f.index.value - vma.vm_pgoff.value);
      return fmt::format(
          "skip {} {}:[{:#x}, {:#x}): vma_address = {:#x} + (({:#x} - {:#x}) << 12) is outside the VMA "
          "(page {} of a {}-page VMA)",
          _n.vma_id(s.vma), vma.vm_mm->name, vma.vm_start.value, vma.vm_end.value, vma.vm_start.value, _f.index.value,
          vma.vm_pgoff.value, idx, vma.pages());
    }
    return fmt::format("skip {}: {}", _n.vma_id(s.vma), s.name);
  }

  const mm::machine& _m;
  const names& _n;
  const mm::folio& _f;
  pfn_t _self;

  /// What the entry a walk looked at holds; of a large folio, which of its pages, or that
  /// its PMD maps it whole.
  std::string pte_words(const mm::walk_step& s) const {
    const std::uint64_t nr = _f.nr_pages(), pfn = s.pte.present() ? s.pte.pfn().value : 0;
    if (!_f.is_large() || pfn < _self.value || pfn >= _self.value + nr)
      return "the PTE maps " + pte_found(s.pte, _self, _m, _n);
    if (s.vma && s.vma->vm_mm->pgd.huge_pmd(s.addr)) return "the PMD maps this folio, every page of it";
    const auto id = _n.frame_id(pfn_t{pfn});
    return fmt::format("the PTE maps page {} of this folio (frame {})", pfn - _self.value, id ? *id : 0);
  }
  std::unordered_map<const void*, std::string> _design_ids;
};

/// Sets a walk tracer for its lifetime: an operation that throws leaves none behind.
class tracing {
 public:
  tracing(mm::machine& m, mm::walk_tracer t) : _m(m) { _m.set_walk_tracer(std::move(t)); }
  ~tracing() { _m.set_walk_tracer({}); }
  tracing(const tracing&) = delete;
  tracing& operator=(const tracing&) = delete;

 private:
  mm::machine& _m;
};

walk_counts count_steps(const std::vector<walk_step_view>& steps, std::uint64_t walks) {
  walk_counts c;
  c.walks = walks;
  for (const auto& s : steps) {
    if (s.kind == "entry") c.entries++;
    if (s.kind == "rmap_one") c.vmas_visited++;
    if (s.kind == "pte") {
      c.ptes_examined++;
      if (s.ok && !*s.ok) c.misses++;
    }
  }
  return c;
}

walk_counts delta(const mm::walk_stats& a, const mm::walk_stats& b) {
  return {b.walks - a.walks, b.entries - a.entries, b.vmas_visited - a.vmas_visited, b.ptes_examined - a.ptes_examined,
          b.misses - a.misses};
}

std::string vm_flags_words(mm::vm_flags_t f) {
  return f.has(mm::vm_flag::locked) ? std::string(" (a VM_LOCKED VMA maps it: it stays in memory)") : std::string();
}

/// Runs @op on @f with the tracer set; returns what the operation returned, in words.
std::string run_op(mm::machine& m, mm::folio& f, walk_op op) {
  switch (op) {
    case walk_op::none: {
      int found = 0;
      mm::rmap_walk_control rwc;
      rwc.rmap_one = [&](mm::folio& fo, mm::vm_area_struct& vma, vaddr_t addr) {
        if (fo.is_large()) found += static_cast<int>(m.large_folio_mappings(fo, vma).size());
        else if (m.page_vma_mapped(fo, vma, addr)) found++;
        return true;
      };
      m.rmap_walk(f, rwc);
      return fmt::format("rmap_walk() found {} mapping{} (map count {})", found, found == 1 ? "" : "s",
                         m.folio_mapcount(f));
    }
    case walk_op::referenced: {
      mm::vm_flags_t flags;
      const int r = m.folio_referenced(f, &flags);
      return fmt::format("folio_referenced() = {}: {} VMA{} had the young bit set (now cleared){}", r, r,
                         r == 1 ? "" : "s", vm_flags_words(flags));
    }
    case walk_op::unmap: {
      if (m.try_to_unmap(f)) return "try_to_unmap(): every PTE is unmapped";
      const int left = m.folio_mapcount(f);
      return fmt::format("try_to_unmap(): stopped with {} mapping{} left", left, left == 1 ? "" : "s");
    }
    case walk_op::mkclean: {
      if (!f.file())
        throw view_error("--op mkclean: folio_mkclean() cleans page-cache folios; this frame is anonymous");
      const int c = m.folio_mkclean(f);
      return fmt::format("folio_mkclean() = {}: {} shared PTE{} write-protected and cleaned", c, c, c == 1 ? "" : "s");
    }
    case walk_op::migrate: {
      auto to = m.migrate_folio(f.pfn);
      return to ? std::string("migrate_folio(): every mapping now maps the new frame; the old one is free")
                : std::string("migrate_folio(): a mapping could not be migrated; nothing moved");
    }
  }
  return "";
}

}  // namespace

walk_view trace_walk(model::session& s, const walk_target& target, walk_op op) {
  mm::machine& m = s.machine();
  const names n(s);
  const pfn_t pfn = resolve_target(s, n, target);
  mm::folio& f = m.page_folio(pfn);  // a page of a large folio: its folio is walked
  // A large folio's walk looks up, in each VMA, every page of it there (or its PMD). Of the
  // operations, the kernel never unmaps a swap-backed one whole (reclaim splits it first),
  // and the model does not migrate or clean large folios yet.
  if (f.is_large()) {
    const bool swapbacked_unmap = op == walk_op::unmap && f.test(mm::folio_flag::swapbacked);
    if (swapbacked_unmap || op == walk_op::migrate || op == walk_op::mkclean)
      throw view_error(fmt::format(
          "frame {}: a page of a large folio (order {}); --op {} of a large folio is {}", *n.frame_id(pfn), f.order,
          to_string(op),
          swapbacked_unmap ? "not a kernel path (reclaim splits a swap-backed one first)" : "not modelled yet"));
  }
  if (f.is_anon() && !m.folio_mapped(f))
    throw view_error(fmt::format(
        "frame {}: no PTE maps it (only the swap cache holds it), so an rmap walk finds nothing: the kernel's "
        "folio_lock_anon_vma_read() gives up on an unmapped folio, whose anon_vma may be gone",
        *n.frame_id(pfn)));

  walk_view w;
  w.file = s.program().file;
  w.position = s.position();
  if (w.position > 0) {
    w.line = s.program().ops[w.position - 1].line;
    w.statement = s.program().ops[w.position - 1].text;
  }
  w.design = m.design_name();
  w.op = op;
  w.frame = *n.frame_id(pfn);
  filter only;
  only.frame = w.frame;
  w.before = detail::snapshot(s, n, only);

  // The design's objects serving this frame get the ids `show --frame` gives them; the
  // steps name them by those ids (the objects themselves are in w.before).
  std::unordered_map<const void*, std::string> design_ids;
  auto dumps = m.anon_rmap_design().dump(&f);
  for (auto& d : m.file_rmap_design().dump(&f)) dumps.push_back(std::move(d));
  (void)detail::name_design_objects(dumps, n, &design_ids);
  step_printer print(m, n, f, std::move(design_ids));

  if (op == walk_op::unmap && f.is_anon() && !f.test(mm::folio_flag::swapcache)) {
    if (!m.add_to_swap(f)) throw view_error("--op unmap: add_to_swap() found no swap slot for this folio");
    w.prelude.push_back(
        "add_to_swap(): the anonymous folio gets a swap slot and joins the swap cache before it is unmapped, "
        "as shrink_folio_list() does");
  }
  const mm::walk_stats before = m.stats();
  {
    const tracing guard(m, [&](const mm::walk_step& step) { w.steps.push_back(print(step)); });
    w.result = run_op(m, f, op);
  }
  w.counts = delta(before, m.stats());
  w.traced = count_steps(w.steps, w.counts.walks);

  // The frame after: its id may change (an unmapped frame is numbered after the mapped
  // ones); a migrated folio is looked at in its new frame.
  const names after(s);
  pfn_t now = pfn;
  if (op == walk_op::migrate && !m.folio_of(pfn).in_use()) {
    for (std::uint64_t id = 1; id <= after.frames(); ++id) {
      const auto& g = m.folio_of(after.frame_pfn(id));
      if (g.index == f.index && g.mapping == f.mapping) now = g.pfn;  // the copy carries index and mapping
    }
  }
  if (auto id = after.frame_id(now)) {
    only.frame = *id;
    w.after = detail::snapshot(s, after, only);
  }
  return w;
}

std::string format_text(const walk_view& w, bool with_after) {
  fmt::memory_buffer out;
  auto it = std::back_inserter(out);
  if (w.position == 0) fmt::format_to(it, "# {}: before the first statement", w.file);
  else fmt::format_to(it, "# {}: after statement {} (line {}: {})", w.file, w.position, w.line, w.statement);
  fmt::format_to(it, "; design {}\n", w.design);
  fmt::format_to(it, "walk frame {} --op {}\n", w.frame, to_string(w.op));
  for (const auto& p : w.prelude) fmt::format_to(it, "  {}\n", p);
  for (const auto& s : w.steps) {
    const bool nested = s.kind == "candidate" || s.kind == "skip" || s.kind == "pte" || s.kind == "rmap_one" ||
                        s.kind == "done" || s.kind == "entry";
    fmt::format_to(it, "{}{}\n", nested ? "    " : "  ", s.text);
  }
  fmt::format_to(it, "result: {}\n", w.result);
  fmt::format_to(it, "counts: walks={} entries={} vmas_visited={} ptes_examined={} misses={}\n", w.counts.walks,
                 w.counts.entries, w.counts.vmas_visited, w.counts.ptes_examined, w.counts.misses);
  if (with_after && !w.after.folios.empty()) fmt::format_to(it, "after:\n{}", format_text(w.after));
  return fmt::to_string(out);
}

}  // namespace rmapkit::view
