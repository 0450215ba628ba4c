#include "names.h"

#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>

namespace rmapkit::view::detail {

namespace sc = rmapkit::scenario;

names::names(const model::session& s, const pte_visitor& on_pte) {
  const mm::machine& m = s.machine();
  _id_of.assign(m.nr_frames(), 0);
  number_pages(s, on_pte);
  number_files(s);
  number_rest(m);
  m.for_each_anon_vma([&](const mm::anon_vma& av) { _anon_vmas.push_back(&av); });
  std::sort(_anon_vmas.begin(), _anon_vmas.end(), [](auto* a, auto* b) { return a->id < b->id; });
  for (std::size_t i = 0; i < _anon_vmas.size(); ++i) _anon_vma_ids.emplace(_anon_vmas[i], i + 1);
  _ksm = m.ksm_snapshot();
  for (std::size_t i = 0; i < _ksm.stable.size(); ++i) _stable_ids.emplace(_ksm.stable[i], i + 1);
}

std::uint64_t names::note_frame(pfn_t pfn) {
  std::uint64_t& id = _id_of[pfn.value];
  if (id == 0) {
    _pfn_of.push_back(pfn);
    id = _pfn_of.size();
  }
  return id;
}

void names::note_swap(mm::swp_entry_t e) { _swap_ids.try_emplace(e.val, _swap_ids.size() + 1); }

void names::note_file(const mm::address_space* as) {
  if (std::find(_files.begin(), _files.end(), as) == _files.end()) _files.push_back(as);
}

// As a bare `check` lists them: live processes by name, their regions by name, the VMAs
// of each region's slot by address.
void names::number_pages(const model::session& s, const pte_visitor& on_pte) {
  const auto& prog = s.program();
  std::vector<sc::proc_id> live;
  for (sc::proc_id p = 0; p < prog.process_names.size(); ++p)
    if (s.mm_of(p)) live.push_back(p);
  std::sort(live.begin(), live.end(),
            [&](sc::proc_id a, sc::proc_id b) { return prog.process_names[a] < prog.process_names[b]; });
  for (sc::proc_id p : live) {
    const mm::mm_struct& mm = *s.mm_of(p);
    for (const auto& [region, base] : s.regions_of(p)) {
      for (auto it = mm.mm_mt.lower_bound(base.value); it != mm.mm_mt.end() && it->first < base.value + sc::SLOT_SIZE;
           ++it) {
        const mm::vm_area_struct* v = it->second;
        _vma_index.emplace(v, _vmas.size());
        _vmas.push_back({v, fmt::format("vma{}", _vmas.size() + 1), prog.process_names[p], region, base});
        if (v->vm_file) note_file(v->vm_file);
        mm.pgd.for_each_mapped(v->vm_start, v->vm_end, [&](vaddr_t a, mm::pte_t pte, bool) {
          std::uint64_t id = 0;
          if (pte.is_swap()) note_swap(pte.swap_entry());
          else if (pte.present() && !s.machine().is_zero_pfn(pte.pfn())) id = note_frame(pte.pfn());
          if (on_pte) on_pte(_vmas.back(), a, pte, id);
        });
      }
    }
  }
}

// The page cache: files first seen through a VMA, then the scenario's others, by index.
void names::number_files(const model::session& s) {
  for (sc::file_id f = 0; f < s.program().file_names.size(); ++f)
    if (auto* as = s.file_of(f)) note_file(as);
  for (const mm::address_space* as : _files) {
    for (const auto& [index, pfn] : as->i_pages) note_frame(pfn);
    for (const auto& [index, e] : as->swapped) note_swap(e);
  }
}

// Frames nothing above reaches (the swap cache's, a KSM page between scans), by pfn.
void names::number_rest(const mm::machine& m) {
  const pfn_t zero = m.zero_pfn();
  for (std::uint64_t pfn = 1; pfn < m.nr_frames(); ++pfn) {
    const mm::folio& f = m.folio_of(pfn_t{pfn});
    if (!f.in_use() || f.pfn == zero) continue;
    note_frame(f.pfn);
    if (f.test(mm::folio_flag::swapcache)) note_swap(f.swap);
  }
}

const vma_entry* names::vma(const mm::vm_area_struct* v) const {
  auto it = _vma_index.find(v);
  return it == _vma_index.end() ? nullptr : &_vmas[it->second];
}

std::string names::vma_id(const mm::vm_area_struct* v) const {
  const vma_entry* e = vma(v);
  return e ? e->id : std::string("vma?");
}

std::optional<std::uint64_t> names::frame_id(pfn_t pfn) const {
  if (pfn.value >= _id_of.size() || _id_of[pfn.value] == 0) return std::nullopt;
  return _id_of[pfn.value];
}

pfn_t names::frame_pfn(std::uint64_t id) const {
  if (id == 0 || id > _pfn_of.size())
    throw view_error(
        fmt::format("no frame {}: {} frames are in use here (ids 1 to {})", id, _pfn_of.size(), _pfn_of.size()));
  return _pfn_of[id - 1];
}

std::optional<std::uint64_t> names::swap_id(mm::swp_entry_t e) const {
  auto it = _swap_ids.find(e.val);
  if (it == _swap_ids.end()) return std::nullopt;
  return it->second;
}

std::uint64_t names::anon_vma_id(const mm::anon_vma* av) const {
  auto it = _anon_vma_ids.find(av);
  return it == _anon_vma_ids.end() ? 0 : it->second;
}

const mm::anon_vma* names::anon_vma_of(std::uint64_t id) const {
  if (id == 0 || id > _anon_vmas.size())
    throw view_error(fmt::format("no anon_vma av{}: {} are alive here{}", id, _anon_vmas.size(),
                                 _anon_vmas.empty() ? "" : fmt::format(" (av1 to av{})", _anon_vmas.size())));
  return _anon_vmas[id - 1];
}

std::uint64_t names::stable_node_id(const mm::ksm_stable_node* n) const {
  auto it = _stable_ids.find(n);
  return it == _stable_ids.end() ? 0 : it->second;
}

namespace {

std::string link_target(const mm::rmap_object_dump::link& l, const std::unordered_map<const void*, std::string>& ids,
                        const names& n) {
  if (l.object) {
    auto it = ids.find(l.object);
    return it == ids.end() ? std::string("?") : it->second;
  }
  if (l.vma) return n.vma_id(l.vma);
  if (l.mm) return fmt::format("pte({} {:#x})", l.mm->name, l.addr.value);
  if (auto id = n.frame_id(l.frame)) return fmt::format("frame {}", *id);
  return "?";
}

}  // namespace

std::vector<design_object_view> name_design_objects(const std::vector<mm::rmap_object_dump>& dumps, const names& n,
                                                    std::unordered_map<const void*, std::string>* ids_out) {
  std::unordered_map<const void*, std::string> ids;
  std::map<std::string, std::uint64_t> per_type;
  for (const auto& d : dumps)
    if (!ids.count(d.key)) ids.emplace(d.key, fmt::format("{}#{}", d.type, ++per_type[d.type]));
  std::vector<design_object_view> out;
  std::set<const void*> seen;
  for (const auto& d : dumps) {
    if (!seen.insert(d.key).second) continue;
    design_object_view o{ids.at(d.key), d.type, d.fields, {}};
    for (const auto& l : d.links) o.links.emplace_back(l.field, link_target(l, ids, n));
    out.push_back(std::move(o));
  }
  if (ids_out) *ids_out = std::move(ids);
  return out;
}

}  // namespace rmapkit::view::detail
