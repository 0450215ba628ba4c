// snapshot(): the model's state as data, narrowed by a filter. One pass over the page
// tables names every frame and finds the PTEs of the frames in focus; everything else is
// read from the objects in focus alone.
#include <algorithm>
#include <charconv>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>

#include <fmt/format.h>

#include "names.h"
#include "rmapkit/view/state.h"

namespace rmapkit::view {

using detail::names;
using detail::vma_entry;
namespace sc = rmapkit::scenario;

namespace {

/// smaps' VmFlags mnemonics, in bit order.
std::vector<std::string> vm_flag_names(mm::vm_flags_t f) {
  using mm::vm_flag;
  // clang-format off
  static constexpr std::pair<vm_flag, const char*> table[] = {
      {vm_flag::read, "rd"}, {vm_flag::write, "wr"}, {vm_flag::exec, "ex"}, {vm_flag::shared, "sh"},
      {vm_flag::mayread, "mr"}, {vm_flag::maywrite, "mw"}, {vm_flag::mayexec, "me"}, {vm_flag::mayshare, "ms"},
      {vm_flag::locked, "lo"}, {vm_flag::seq_read, "sr"}, {vm_flag::rand_read, "rr"}, {vm_flag::dontcopy, "dc"},
      {vm_flag::account, "ac"}, {vm_flag::noreserve, "nr"}, {vm_flag::wipeonfork, "wf"}, {vm_flag::dontdump, "dd"},
      {vm_flag::softdirty, "sd"}, {vm_flag::hugepage, "hg"}, {vm_flag::nohugepage, "nh"}, {vm_flag::mergeable, "mg"}};
  // clang-format on
  std::vector<std::string> out;
  for (auto [flag, name] : table)
    if (f.has(flag)) out.emplace_back(name);
  return out;
}

std::vector<std::string> folio_flag_names(const mm::folio& f) {
  using mm::folio_flag;
  // clang-format off
  static constexpr std::pair<folio_flag, const char*> table[] = {
      {folio_flag::locked, "locked"}, {folio_flag::referenced, "referenced"}, {folio_flag::uptodate, "uptodate"},
      {folio_flag::dirty, "dirty"}, {folio_flag::lru, "lru"}, {folio_flag::active, "active"},
      {folio_flag::swapbacked, "swapbacked"}, {folio_flag::swapcache, "swapcache"}, {folio_flag::mlocked, "mlocked"},
      {folio_flag::anon_exclusive, "anon_exclusive"}, {folio_flag::unevictable, "unevictable"}};
  // clang-format on
  std::vector<std::string> out;
  for (auto [flag, name] : table)
    if (f.test(flag)) out.emplace_back(name);
  return out;
}

const char* lru_name(mm::lru_list l) {
  switch (l) {
    case mm::lru_list::inactive_anon: return "inactive_anon";
    case mm::lru_list::active_anon: return "active_anon";
    case mm::lru_list::inactive_file: return "inactive_file";
    case mm::lru_list::active_file: return "active_file";
    case mm::lru_list::unevictable: return "unevictable";
  }
  return "";
}

/// What the filter keeps: null sets keep everything of their kind.
struct focus {
  std::optional<std::set<const mm::vm_area_struct*>> vmas;
  std::optional<std::set<const mm::anon_vma*>> anon_vmas;
  std::optional<std::set<const mm::address_space*>> files;
  std::optional<std::set<std::uint64_t>> frames;  // pfns
  std::optional<std::set<std::string>> procs;

  template <typename T>
  static void narrow(std::optional<std::set<T>>& have, std::set<T> want) {
    if (!have) {
      have = std::move(want);
      return;
    }
    std::set<T> both;
    std::set_intersection(have->begin(), have->end(), want.begin(), want.end(), std::inserter(both, both.end()));
    have = std::move(both);
  }
  template <typename T>
  static bool keeps(const std::optional<std::set<T>>& s, const T& v) {
    return !s || s->count(v) != 0;
  }
};

/// The anon_vma and its ancestors up to the root: what a walk from it locks and reads.
void add_lineage(std::set<const mm::anon_vma*>& out, const mm::anon_vma* av) {
  for (; av && out.insert(av).second; av = av->parent) {
  }
  if (av) out.insert(av->root);
}

class builder {
 public:
  builder(const model::session& s, const names& n, const filter& f) : _s(s), _m(s.machine()), _f(f), _names(&n) {}

  state build() {
    collect_ptes();
    narrow();
    state st = header();
    for (const auto& e : _names->vmas())
      if (focus::keeps(_focus.vmas, e.vma)) add_vma(st, e);
    if (is_linux6())
      for (const auto* av : _names->anon_vmas())
        if (focus::keeps(_focus.anon_vmas, av)) st.anon_vmas.push_back(anon_vma(*av));
    for (const auto* as : _names->files())
      if (focus::keeps(_focus.files, as)) st.files.push_back(file(*as));
    st.ksm = ksm();
    for (std::uint64_t id = 1; id <= _names->frames(); ++id) {
      pfn_t pfn = _names->frame_pfn(id);
      if (focus::keeps(_focus.frames, pfn.value)) st.folios.push_back(folio(id, _m.folio_of(pfn)));
    }
    st.design_objects = design_objects();
    return st;
  }

 private:
  /// folio->mapping's anon_vma, if it is still alive: as in the kernel, an unmapped folio
  /// (one only the swap cache holds) keeps pointing at an anon_vma that may have been freed.
  [[nodiscard]] const mm::anon_vma* live_anon_vma(const mm::folio& f) const {
    return f.anon() && _names->anon_vma_id(f.anon()) != 0 ? f.anon() : nullptr;
  }

  [[nodiscard]] bool is_linux6() const { return std::string_view(_m.anon_rmap_design().name()) == "linux-6"; }

  // The PTEs that map the frames shown. For one frame, a lookup at vma_address() of its
  // index in each VMA: a page is mapped nowhere else (an invariant the model checks), so
  // one frame costs a lookup a VMA, not a pass over every PTE. KSM pages, whose index
  // says nothing about where they are mapped, and whole dumps take the pass.
  void collect_ptes() {
    if (_f.frame) {
      const mm::folio& f = _m.folio_of(_names->frame_pfn(*_f.frame));
      // A page of a large folio has its folio's index plus its place in it.
      const mm::folio& head = _m.page_folio(f.pfn);
      const pgoff_t index{head.index.value + (f.pfn.value - head.pfn.value)};
      if (!head.is_ksm()) {
        for (const auto& e : _names->vmas())
          if (auto a = mm::machine::vma_address(*e.vma, index)) note_pte(e, *a, e.vma->vm_mm->pgd.get(*a), f.pfn);
        return;
      }
    }
    for (const auto& e : _names->vmas())
      e.vma->vm_mm->pgd.for_each_mapped(e.vma->vm_start, e.vma->vm_end, [&](vaddr_t a, mm::pte_t pte, bool) {
        if (pte.present() && !_m.is_zero_pfn(pte.pfn())) note_pte(e, a, pte, std::nullopt);
      });
  }

  void note_pte(const vma_entry& e, vaddr_t a, mm::pte_t pte, std::optional<pfn_t> only) {
    if (!pte.present() || (only && pte.pfn() != *only)) return;
    if (_f.frame && _names->frame_id(pte.pfn()) != *_f.frame) return;
    _ptes[pte.pfn().value].push_back(
        pte_ref{e.process, e.region, pages_between(e.base, a), a, e.id, pte.write(), pte.young(), pte.dirty()});
  }

  state header() const {
    state st;
    st.file = _s.program().file;
    st.position = _s.position();
    if (st.position > 0) {
      const auto& o = _s.program().ops[st.position - 1];
      st.line = o.line;
      st.statement = o.text;
    }
    st.design = _m.design_name();
    st.filter = _f;
    return st;
  }

  void narrow() {
    if (_f.pid) narrow_pid(*_f.pid);
    if (_f.frame) narrow_frame(*_f.frame);
    if (_f.anon_vma) narrow_anon_vma(*_f.anon_vma);
    if (_f.file) narrow_file(*_f.file);
  }

  void narrow_pid(const std::string& name) {
    const auto& procs = _s.program().process_names;
    auto it = std::find(procs.begin(), procs.end(), name);
    if (it == procs.end()) throw view_error(fmt::format("--pid {}: no such process in the scenario", name));
    if (!_s.mm_of(static_cast<sc::proc_id>(it - procs.begin())))
      throw view_error(fmt::format("--pid {}: the process is not alive after statement {}", name, _s.position()));
    std::set<const mm::vm_area_struct*> vmas;
    std::set<const mm::anon_vma*> avs;
    std::set<const mm::address_space*> files;
    std::set<std::uint64_t> frames;
    for (const auto& e : _names->vmas()) {
      if (e.process != name) continue;
      vmas.insert(e.vma);
      e.vma->anon_vma_chain.for_each([&](const mm::anon_vma_chain& avc) { avs.insert(avc.anon_vma); });
      if (e.vma->vm_file) files.insert(e.vma->vm_file);
    }
    for (const auto& [pfn, refs] : _ptes)
      if (std::any_of(refs.begin(), refs.end(), [&](const pte_ref& r) { return r.process == name; }))
        frames.insert(pfn);
    focus::narrow(_focus.vmas, std::move(vmas));
    focus::narrow(_focus.anon_vmas, std::move(avs));
    focus::narrow(_focus.files, std::move(files));
    focus::narrow(_focus.frames, std::move(frames));
    focus::narrow(_focus.procs, std::set<std::string>{name});
  }

  void narrow_frame(std::uint64_t id) {
    const pfn_t pfn = _names->frame_pfn(id);
    const mm::folio& f = _m.folio_of(pfn);
    std::set<const mm::vm_area_struct*> vmas;
    std::set<const mm::anon_vma*> avs;
    std::set<const mm::address_space*> files;
    std::set<std::string> procs;
    for (const auto& r : _ptes[pfn.value]) procs.insert(r.process);
    for (const auto& e : _names->vmas())
      if (std::any_of(_ptes[pfn.value].begin(), _ptes[pfn.value].end(), [&](auto& r) { return r.vma == e.id; }))
        vmas.insert(e.vma);
    // What its reverse map holds: the VMAs a walk of it considers.
    if (f.anon() && !is_linux6()) {
      for (const auto& d : _m.anon_rmap_design().dump(&f))
        for (const auto& l : d.links) {
          if (l.vma) vmas.insert(l.vma);
          if (l.mm) vmas.insert(mm::machine::find_vma(*l.mm, l.addr));
        }
    } else if (auto* av = live_anon_vma(f)) {
      add_lineage(avs, av);
      for (auto* avc = av->rb_root.iter_first(f.index.value, f.index.value); avc;
           avc = av->rb_root.iter_next(*avc, f.index.value, f.index.value))
        vmas.insert(avc->vma);
    } else if (auto* as = f.file()) {
      files.insert(as);
      for (auto* v = as->i_mmap.iter_first(f.index.value, f.index.value); v;
           v = as->i_mmap.iter_next(*v, f.index.value, f.index.value))
        vmas.insert(v);
    }
    for (const auto* v : vmas)
      if (const auto* e = _names->vma(v)) procs.insert(e->process);
    focus::narrow(_focus.vmas, std::move(vmas));
    focus::narrow(_focus.anon_vmas, std::move(avs));
    focus::narrow(_focus.files, std::move(files));
    focus::narrow(_focus.frames, std::set<std::uint64_t>{pfn.value});
    focus::narrow(_focus.procs, std::move(procs));
  }

  void narrow_anon_vma(std::uint64_t id) {
    const mm::anon_vma* av = _names->anon_vma_of(id);
    std::set<const mm::vm_area_struct*> vmas;
    std::set<const mm::anon_vma*> avs;
    std::set<std::string> procs;
    add_lineage(avs, av);
    for (auto* avc = av->rb_root.iter_first(0, ~0ULL); avc; avc = av->rb_root.iter_next(*avc, 0, ~0ULL)) {
      vmas.insert(avc->vma);
      if (const auto* e = _names->vma(avc->vma)) procs.insert(e->process);
    }
    std::set<std::uint64_t> frames;
    for (std::uint64_t i = 1; i <= _names->frames(); ++i) {
      const mm::folio& f = _m.folio_of(_names->frame_pfn(i));
      if (f.anon() == av) frames.insert(f.pfn.value);
    }
    focus::narrow(_focus.vmas, std::move(vmas));
    focus::narrow(_focus.anon_vmas, std::move(avs));
    focus::narrow(_focus.files, std::set<const mm::address_space*>{});
    focus::narrow(_focus.frames, std::move(frames));
    focus::narrow(_focus.procs, std::move(procs));
  }

  void narrow_file(const std::string& name) {
    const mm::address_space* as = nullptr;
    for (const auto* f : _names->files())
      if (f->name == name) as = f;
    if (!as) throw view_error(fmt::format("--file {}: no such file is open after statement {}", name, _s.position()));
    std::set<const mm::vm_area_struct*> vmas;
    std::set<std::string> procs;
    for (auto* v = as->i_mmap.iter_first(0, ~0ULL); v; v = as->i_mmap.iter_next(*v, 0, ~0ULL)) {
      vmas.insert(v);
      if (const auto* e = _names->vma(v)) procs.insert(e->process);
    }
    std::set<std::uint64_t> frames;
    for (const auto& [index, pfn] : as->i_pages) frames.insert(pfn.value);
    focus::narrow(_focus.vmas, std::move(vmas));
    focus::narrow(_focus.anon_vmas, std::set<const mm::anon_vma*>{});
    focus::narrow(_focus.files, std::set<const mm::address_space*>{as});
    focus::narrow(_focus.frames, std::move(frames));
    focus::narrow(_focus.procs, std::move(procs));
  }

  void add_vma(state& st, const vma_entry& e) {
    const mm::vm_area_struct& v = *e.vma;
    if (st.mms.empty() || st.mms.back().process != e.process) st.mms.push_back({e.process, {}});
    vma_view vv;
    vv.id = e.id;
    vv.process = e.process;
    vv.region = e.region;
    vv.first = pages_between(e.base, v.vm_start);
    vv.end = pages_between(e.base, v.vm_end);
    vv.vm_start = v.vm_start;
    vv.vm_end = v.vm_end;
    vv.perms = mm::maps_perms(v);
    vv.vm_flags = vm_flag_names(v.vm_flags);
    vv.vm_pgoff = v.vm_pgoff.value;
    if (v.vm_file) vv.file = v.vm_file->name;
    if (is_linux6()) {
      if (v.anon_vma) vv.anon_vma = _names->anon_vma_id(v.anon_vma);
      v.anon_vma_chain.for_each(
          [&](const mm::anon_vma_chain& avc) { vv.anon_vma_chain.push_back(_names->anon_vma_id(avc.anon_vma)); });
    }
    st.mms.back().vmas.push_back(std::move(vv));
  }

  anon_vma_view anon_vma(const mm::anon_vma& av) const {
    anon_vma_view a;
    a.id = _names->anon_vma_id(&av);
    a.root = _names->anon_vma_id(av.root);
    a.parent = _names->anon_vma_id(av.parent);
    a.refcount = av.refcount;
    a.num_children = av.num_children;
    a.num_active_vmas = av.num_active_vmas;
    a.ksm_refs = av.ksm_refs;
    for (auto* avc = av.rb_root.iter_first(0, ~0ULL); avc; avc = av.rb_root.iter_next(*avc, 0, ~0ULL))
      a.rb_root.push_back({avc->cached_start, avc->cached_last, _names->vma_id(avc->vma)});
    return a;
  }

  file_view file(const mm::address_space& as) const {
    file_view fv;
    fv.name = as.name;
    fv.shmem = as.shmem;
    fv.anon_shared = as.anon_shared;
    fv.pages = as.size_pages;
    for (auto* v = as.i_mmap.iter_first(0, ~0ULL); v; v = as.i_mmap.iter_next(*v, 0, ~0ULL))
      fv.i_mmap.push_back({v->vm_pgoff.value, v->last_pgoff(), _names->vma_id(v)});
    for (const auto& [index, pfn] : as.i_pages)
      if (focus::keeps(_focus.frames, pfn.value)) fv.i_pages.emplace_back(index, _names->frame_id(pfn).value_or(0));
    for (const auto& [index, e] : as.swapped) fv.swapped.emplace_back(index, _names->swap_id(e).value_or(0));
    return fv;
  }

  ksm_view ksm() const {
    ksm_view k;
    const auto& kv = _names->ksm();
    for (const auto* mm : kv.mm_slots)
      if (focus::keeps(_focus.procs, mm->name)) k.mm_slots.push_back(mm->name);
    for (std::size_t i = 0; i < kv.stable.size(); ++i) {
      const auto* n = kv.stable[i];
      if (!focus::keeps(_focus.frames, n->kpfn.value)) continue;
      stable_node_view s{_names->stable_node_id(n), _names->frame_id(n->kpfn).value_or(0), kv.stable_chain[i], {}};
      // An exited mm's rmap_items stay on the node until ksmd's next scan.
      for (const auto* item : n->hlist) s.hlist.emplace_back(item->mm ? item->mm->name : "(exited)", item->address);
      k.stable.push_back(std::move(s));
    }
    for (const auto* item : kv.rmap_items) {
      if (!focus::keeps(_focus.procs, item->mm->name)) continue;
      if (_focus.frames && !(item->head && _focus.frames->count(item->head->kpfn.value))) continue;
      rmap_item_view r{item->mm->name, item->address, std::nullopt, std::nullopt, item->unstable};
      if (item->anon_vma && is_linux6()) r.anon_vma = _names->anon_vma_id(item->anon_vma);
      if (item->head) r.stable_node = _names->stable_node_id(item->head);
      k.rmap_items.push_back(std::move(r));
    }
    // Narrowed to something KSM has no part in: no KSM section at all.
    if (_f.any() && k.stable.empty() && k.rmap_items.empty()) k.mm_slots.clear();
    for (const auto* item : kv.unstable)
      if (focus::keeps(_focus.procs, item->mm->name) && !_focus.frames)
        k.unstable.emplace_back(item->mm->name, item->address);
    return k;
  }

  folio_view folio(std::uint64_t id, const mm::folio& page) const {
    const mm::folio& f = _m.page_folio(page.pfn);
    folio_view fv;
    fv.id = id;
    fv.pfn = page.pfn.value;
    const std::uint64_t sub = page.pfn.value - f.pfn.value;
    if (f.is_large()) fv.large = large_folio_ref{_names->frame_id(f.pfn), f.order, sub};
    if (f.is_ksm()) {
      fv.mapping = "ksm";
      fv.stable_node = _names->stable_node_id(f.ksm_node());
    } else if (f.anon()) {
      fv.mapping = "anon";
      if (is_linux6() && live_anon_vma(f)) fv.anon_vma = _names->anon_vma_id(f.anon());
    } else if (f.file()) {
      fv.mapping = "file";
      fv.file = f.file()->name;
    } else {
      fv.mapping = "none";
    }
    fv.index = f.index.value + sub;
    fv.mapcount = page.mapcount;
    fv.refcount = f.refcount;
    fv.flags = folio_flag_names(f);
    if (f.is_large()) {  // AnonExclusive is the page's own
      std::erase(fv.flags, std::string("anon_exclusive"));
      if (page.test(mm::folio_flag::anon_exclusive)) fv.flags.emplace_back("anon_exclusive");
    }
    if (f.test(mm::folio_flag::swapcache)) fv.swap = _names->swap_id(f.swap);
    if (auto l = mm::machine::lru_of(f)) fv.lru = lru_name(*l);
    if (auto it = _ptes.find(page.pfn.value); it != _ptes.end())
      for (const auto& r : it->second)
        if (focus::keeps(_focus.procs, r.process)) fv.mapped_by.push_back(r);
    return fv;
  }

  // The designs' own objects: the anonymous design's unless it is linux-6, then the file
  // design's unless it is the interval tree (those two are the machine's own, drawn above).
  std::vector<design_object_view> design_objects() const {
    std::vector<mm::rmap_object_dump> dumps;
    auto add = [&](std::vector<mm::rmap_object_dump> d) {
      dumps.insert(dumps.end(), std::make_move_iterator(d.begin()), std::make_move_iterator(d.end()));
    };
    auto from = [&](const auto& design) {
      if (!_focus.frames) return add(design.dump(nullptr));
      for (std::uint64_t pfn : *_focus.frames) add(design.dump(&_m.folio_of(pfn_t{pfn})));
    };
    if (!is_linux6()) from(_m.anon_rmap_design());
    if (std::string_view(_m.file_rmap_design().name()) != mm::file_rmap_designs().front()) from(_m.file_rmap_design());
    return detail::name_design_objects(dumps, *_names);
  }

  const model::session& _s;
  const mm::machine& _m;
  const filter& _f;
  const names* _names;
  std::unordered_map<std::uint64_t, std::vector<pte_ref>> _ptes;  // pfn -> its PTEs
  focus _focus;
};

}  // namespace

state snapshot(const model::session& s, const filter& f) {
  const names n(s);
  return builder(s, n, f).build();
}

namespace detail {
state snapshot(const model::session& s, const names& n, const filter& f) { return builder(s, n, f).build(); }
}  // namespace detail

std::size_t parse_at(const scenario::program& prog, const std::string& at) {
  const std::size_t n = prog.ops.size();
  if (at.empty() || at == "end") return n;
  auto number = [&](std::string_view text, const char* what) {
    std::uint64_t v = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || p != text.data() + text.size())
      throw view_error(fmt::format("--at {}: not a {} (--at N, --at line:L or --at end)", at, what));
    return v;
  };
  if (at.starts_with("line:")) {
    const auto line = number(std::string_view(at).substr(5), "line number");
    for (std::size_t i = 0; i < n; ++i)
      if (static_cast<std::uint64_t>(prog.ops[i].line) == line) return i + 1;
    throw view_error(fmt::format("--at {}: line {} holds no statement", at, line));
  }
  const auto k = number(at, "statement number");
  if (k > n) throw view_error(fmt::format("--at {}: the scenario has only {} statements", at, n));
  return k;
}

}  // namespace rmapkit::view
