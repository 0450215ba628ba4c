// What linux-2.6.34 and linux-3.19 share (avc.h): the anon_vma lifecycle, AVC chains and
// page->mapping. The kernel functions each member follows are named on it.
#include "avc.h"

#include <algorithm>
#include <string>

#include <fmt/format.h>

namespace rmapkit::mm::designs {

avc_anon_rmap::avc_anon_rmap(machine& m, fork_reuse reuse, std::size_t anon_vma_bytes, std::size_t avc_bytes)
    : _m(m), _reuse(reuse), _anon_vma_objects("anon_vma", anon_vma_bytes), _avc_objects("anon_vma_chain", avc_bytes) {}

void avc_anon_rmap::drop_all_chains() {
  for (auto& [vma, st] : _vma_state) drop_chain(st);
}

avc_era_vma* avc_anon_rmap::vma_state(const vm_area_struct& vma) {
  auto it = _vma_state.find(&vma);
  return it == _vma_state.end() ? nullptr : &it->second;
}

// anon_vma_prepare(): the neighbour's anon_vma when the machine merged them, else a new one.
void avc_anon_rmap::prepare(vm_area_struct& vma) {
  auto& st = _vma_state[&vma];
  avc_era_anon_vma* av = nullptr;
  if (auto* n = anon_vma_neighbour(vma); n && _vma_state.count(n)) av = _vma_state[n].anon_vma;
  if (!av) av = alloc_anon_vma();  // degree 1: its first VMA
  st.anon_vma = av;
  const auto lock = root_lock(av);
  link(vma, st, av);
  av->degree++;  // a new root's self-parent reference (a root is never reused), or the VMA's
}

// anon_vma_clone() for split, mremap and merge: an exact copy of @src's chain.
void avc_anon_rmap::clone(vm_area_struct& dst, vm_area_struct& src) {
  auto& s = _vma_state[&src];
  auto& d = _vma_state[&dst];
  copy_chain(dst, d, s, false);
  d.anon_vma = s.anon_vma;
  if (d.anon_vma) d.anon_vma->degree++;
}

// anon_vma_fork(): the parent's chain, then the child's own anon_vma unless the era
// reused an ancestor's.
void avc_anon_rmap::fork(vm_area_struct& child, vm_area_struct& parent) {
  auto& p = _vma_state[&parent];
  auto& c = _vma_state[&child];
  if (!p.anon_vma) return;
  copy_chain(child, c, p, _reuse == fork_reuse::idle_ancestor);
  if (c.anon_vma) return;
  auto* av = alloc_anon_vma();
  av->root = p.anon_vma->root;
  av->parent = p.anon_vma;
  av->root->refcount++;
  c.anon_vma = av;
  const auto lock = root_lock(av);
  link(child, c, av);
  av->parent->degree++;
}

void avc_anon_rmap::unlink(vm_area_struct& vma) {
  auto it = _vma_state.find(&vma);
  if (it == _vma_state.end()) return;
  drop_chain(it->second);
  _vma_state.erase(it);
}

// page_add_new_anon_rmap(): a page that may be shared points at the root.
void avc_anon_rmap::add_new(folio& f, vm_area_struct& vma, vaddr_t, bool exclusive) {
  avc_era_anon_vma* av = _vma_state.at(&vma).anon_vma;
  _mapping[f.pfn] = exclusive ? av : av->root;
}

void avc_anon_rmap::move(folio& f, vm_area_struct& vma) { _mapping[f.pfn] = _vma_state.at(&vma).anon_vma; }

void avc_anon_rmap::migrate(folio& src, folio& dst) {
  auto* av = _mapping[src.pfn];  // a copy: indexing dst may grow the table
  _mapping[dst.pfn] = av;
}

void avc_anon_rmap::split(const folio& head, folio& page) {
  auto* av = _mapping[head.pfn];  // a copy: indexing page may grow the table
  _mapping[page.pfn] = av;
}

std::vector<rmap_object_count> avc_anon_rmap::objects() const {
  return {_anon_vma_objects.count(), _avc_objects.count()};
}

std::string avc_anon_rmap::check() const {
  std::size_t linked = 0;
  for (const auto& [vma, st] : _vma_state) linked += st.chain.size();
  if (linked != _avc_objects.count().live())
    return fmt::format("{}: {} AVCs live but {} on VMA chains", name(), _avc_objects.count().live(), linked);
  return {};
}

std::optional<rmap_lock> avc_anon_rmap::root_lock(const avc_era_anon_vma* av) {
  if (_reuse != fork_reuse::idle_ancestor || !av) return std::nullopt;
  return std::optional<rmap_lock>{std::in_place, _m, rmap_lock_class::anon_vma_root_rwsem, av->root};
}

std::optional<rmap_lock> avc_anon_rmap::own_lock(const avc_era_anon_vma* av) {
  if (_reuse == fork_reuse::idle_ancestor || !av) return std::nullopt;
  return std::optional<rmap_lock>{std::in_place, _m, rmap_lock_class::anon_vma_lock, av};
}

avc_era_anon_vma* avc_anon_rmap::alloc_anon_vma() {
  _anon_vma_objects.alloc();
  avc_era_anon_vma* av = _anon_vma_slab.alloc();
  av->serial = ++_serial;
  return av;
}

namespace {

rmap_object_dump dump_anon_vma(const avc_era_anon_vma& av) {
  rmap_object_dump d{.key = &av,
                     .type = "anon_vma",
                     .fields = {{"refcount", std::to_string(av.refcount)},
                                {"degree", std::to_string(av.degree)},
                                {"avcs", std::to_string(av.avcs)}},
                     .links = {{.field = "root", .object = av.root}, {.field = "parent", .object = av.parent}}};
  av.head.for_each([&](const avc_era_chain& avc) { d.links.push_back({.field = "head", .object = &avc}); });
  for (const auto* avc = av.rb_root.iter_first(0, ~0ULL); avc; avc = av.rb_root.iter_next(*avc, 0, ~0ULL))
    d.links.push_back({.field = "rb_root", .object = avc});
  return d;
}

rmap_object_dump dump_avc(const avc_era_chain& avc) {
  return {.key = &avc,
          .type = "anon_vma_chain",
          .fields = {{"start", fmt::format("{:#x}", avc.start)}, {"last", fmt::format("{:#x}", avc.last)}},
          .links = {{.field = "vma", .vma = avc.vma}, {.field = "anon_vma", .object = avc.anon_vma}}};
}

}  // namespace

// The anon_vmas oldest first, each followed by its AVCs; with @only, the frame's
// page->mapping, its anon_vma and that anon_vma's AVCs.
std::vector<rmap_object_dump> avc_anon_rmap::dump(const folio* only) const {
  std::vector<rmap_object_dump> out;
  std::vector<const avc_era_anon_vma*> avs;
  auto page = [&](pfn_t pfn, avc_era_anon_vma* const& av) {
    if (!av || !mapped_anon(_m.folio_of(pfn))) return;  // a stale entry: the frame moved on
    out.push_back({.key = &av,
                   .type = "page->mapping",
                   .fields = {},
                   .links = {{.field = "page", .frame = pfn}, {.field = "mapping", .object = av}}});
    avs.push_back(av);
  };
  if (only) {
    if (auto* const* av = _mapping.find(only->pfn)) page(only->pfn, *av);
  } else {
    _mapping.for_each(page);
    for (const auto& [vma, st] : _vma_state)
      st.chain.for_each([&](const avc_era_chain& avc) { avs.push_back(avc.anon_vma); });
  }
  std::sort(avs.begin(), avs.end(), [](auto* a, auto* b) { return a->serial < b->serial; });
  avs.erase(std::unique(avs.begin(), avs.end()), avs.end());
  for (const avc_era_anon_vma* av : avs) {
    out.push_back(dump_anon_vma(*av));
    av->head.for_each([&](const avc_era_chain& avc) { out.push_back(dump_avc(avc)); });
    for (const auto* avc = av->rb_root.iter_first(0, ~0ULL); avc; avc = av->rb_root.iter_next(*avc, 0, ~0ULL))
      out.push_back(dump_avc(*avc));
  }
  return out;
}

// put_anon_vma(): a child pins its root, so the root goes last.
void avc_anon_rmap::put_anon_vma(avc_era_anon_vma* av) {
  if (--av->refcount > 0) return;
  avc_era_anon_vma* root = av->root;
  free_anon_vma(av);
  if (root != av && --root->refcount == 0) free_anon_vma(root);
}

void avc_anon_rmap::free_anon_vma(avc_era_anon_vma* av) {
  _anon_vma_slab.free(av);
  _anon_vma_objects.free();
}

// anon_vma_chain_link()
void avc_anon_rmap::link(vm_area_struct& vma, avc_era_vma& st, avc_era_anon_vma* av) {
  const auto lock = own_lock(av);
  auto* avc = _chain_slab.alloc();
  _avc_objects.alloc();
  avc->vma = &vma;
  avc->anon_vma = av;
  avc->start = vma.vm_pgoff.value;
  avc->last = vma.last_pgoff();
  st.chain.add(avc->same_vma);
  av->avcs++;
  index_insert(*avc);
}

/// anon_vma_clone(): @dst gets an AVC for every anon_vma on @src's chain, oldest first;
/// at fork under the degree rule it may adopt one of them.
void avc_anon_rmap::copy_chain(vm_area_struct& dst, avc_era_vma& d, avc_era_vma& s, bool reuse) {
  const auto lock = root_lock(s.chain.empty() ? nullptr : s.chain.first()->anon_vma);
  s.chain.for_each_reverse([&](avc_era_chain& pavc) {
    link(dst, d, pavc.anon_vma);
    if (reuse && !d.anon_vma && pavc.anon_vma != s.anon_vma && pavc.anon_vma->degree < 2) d.anon_vma = pavc.anon_vma;
  });
  if (reuse && d.anon_vma) d.anon_vma->degree++;
}

/// unlink_anon_vmas(), both phases: an anon_vma whose last AVC goes is put after the
/// others, the root last.
void avc_anon_rmap::drop_chain(avc_era_vma& st) {
  std::vector<avc_era_anon_vma*> emptied;
  const auto lock = root_lock(st.chain.empty() ? nullptr : st.chain.first()->anon_vma);
  st.chain.for_each([&](avc_era_chain& avc) {
    avc_era_anon_vma* av = avc.anon_vma;
    const auto own = own_lock(av);
    index_remove(avc);
    avc.same_vma.del();
    _chain_slab.free(&avc);
    _avc_objects.free();
    if (--av->avcs == 0) {
      av->parent->degree--;
      emptied.push_back(av);
    }
  });
  if (st.anon_vma) st.anon_vma->degree--;
  st.anon_vma = nullptr;
  for (auto* av : emptied) put_anon_vma(av);
}

}  // namespace rmapkit::mm::designs
