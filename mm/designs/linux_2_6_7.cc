// Linux 2.6.7's anonymous reverse map (mm/rmap.c, v2.6.7): the first object-based one,
// which replaced 2.5's per-PTE chains (pte_chain.cc). One anon_vma per fork family: fork
// adds the child's VMA to its parent's anon_vma, and an anon_vma is a plain list of
// every VMA of the family. It costs one small object per family, nothing per page or per
// fork; but a walk visits every VMA of the family, even those whose range misses the
// page and those of processes that have long since replaced it by their own copy: the
// cost that made 2.6.34 give each VMA its own anon_vma (linux_2_6_34.cc).
#include <algorithm>
#include <string>
#include <unordered_map>

#include "support.h"

namespace rmapkit::mm::designs {
namespace {

struct family_vma;

/// 2.6.7's struct anon_vma: one per fork family.
struct family_anon_vma {
  list_head<family_vma> head;  ///< every VMA of the family
  std::size_t vmas = 0;
  std::uint64_t serial = 0;  ///< allocation order, so that a dump lists families oldest first
};

/// What 2.6.7 kept in struct vm_area_struct: its family's anon_vma and its place on the
/// family's list (anon_vma_node).
struct family_vma {
  vm_area_struct* vma = nullptr;
  family_anon_vma* anon_vma = nullptr;
  list_head<family_vma> anon_vma_node{this};
};

class linux_2_6_7_anon_rmap final : public anon_rmap {
 public:
  explicit linux_2_6_7_anon_rmap(machine& m) : _m(m) {}
  ~linux_2_6_7_anon_rmap() override {
    for (auto& [vma, member] : _members) member.anon_vma_node.del();
  }
  linux_2_6_7_anon_rmap(const linux_2_6_7_anon_rmap&) = delete;
  linux_2_6_7_anon_rmap& operator=(const linux_2_6_7_anon_rmap&) = delete;

  [[nodiscard]] const char* name() const override { return "linux-2.6.7"; }

  // anon_vma_prepare(): the neighbour's family when the machine merged them, else a new one.
  void prepare(vm_area_struct& vma) override {
    family_anon_vma* av = nullptr;
    if (auto* n = anon_vma_neighbour(vma); n && _members.count(n)) av = _members[n].anon_vma;
    if (!av) {
      av = _family_slab.alloc();
      av->serial = ++_serial;
      _anon_vma_objects.alloc();
    }
    join(vma, av);
  }
  // Split, mremap, merge and fork all join the source VMA's family (anon_vma_link()).
  void clone(vm_area_struct& dst, vm_area_struct& src) override {
    if (auto it = _members.find(&src); it != _members.end() && it->second.anon_vma) join(dst, it->second.anon_vma);
  }
  void fork(vm_area_struct& child, vm_area_struct& parent) override { clone(child, parent); }

  // anon_vma_unlink(): the family's anon_vma goes with its last VMA.
  void unlink(vm_area_struct& vma) override {
    auto it = _members.find(&vma);
    if (it == _members.end()) return;
    family_anon_vma* av = it->second.anon_vma;
    const rmap_lock lock(_m, rmap_lock_class::anon_vma_lock, av);
    it->second.anon_vma_node.del();
    _members.erase(it);
    if (--av->vmas == 0) {
      _family_slab.free(av);
      _anon_vma_objects.free();
    }
  }

  void add_new(folio& f, vm_area_struct& vma, vaddr_t, bool) override { _mapping[f.pfn] = _members.at(&vma).anon_vma; }
  void migrate(folio& src, folio& dst) override {
    auto* av = _mapping[src.pfn];  // a copy: indexing dst may grow the table
    _mapping[dst.pfn] = av;
  }
  void split(const folio& head, folio& page) override {
    auto* av = _mapping[head.pfn];
    _mapping[page.pfn] = av;
  }

  // page_referenced_anon() / try_to_unmap_anon(): the whole family.
  void walk(folio& f, const rmap_walk_control& rwc) override {
    family_anon_vma* av = _mapping[f.pfn];
    if (!av) return;
    rmap_trace(_m, [&] { return walk_step{.what = walk_step::kind::start, .name = "anon_vma", .object = av}; });
    const rmap_lock lock(_m, rmap_lock_class::anon_vma_lock, av, "page_lock_anon_vma");
    rmap_trace(_m, [&] {
      return walk_step{
          .what = walk_step::kind::query, .name = "anon_vma->head (every VMA of the family)", .object = av};
    });
    bool go = true;
    av->head.for_each([&](family_vma& member) {
      if (!go) return;
      rmap_entry(_m, "vm_area_struct->anon_vma_node", &member, member.vma);
      go = rmap_visit(_m, f, *member.vma, rmap_candidates::may_miss_the_page, rwc);
    });
  }

  [[nodiscard]] std::vector<rmap_object_count> objects() const override { return {_anon_vma_objects.count()}; }

  // Each family's anon_vma and its list of VMAs; and page->mapping of each frame.
  [[nodiscard]] std::vector<rmap_object_dump> dump(const folio* only) const override {
    std::vector<rmap_object_dump> out;
    std::vector<const family_anon_vma*> families;
    auto note = [&](const family_anon_vma* av) {
      if (av) families.push_back(av);
    };
    auto page = [&](pfn_t pfn, family_anon_vma* const& av) {
      if (!av || !mapped_anon(_m.folio_of(pfn))) return;  // a stale entry: the frame moved on
      out.push_back({.key = &av,
                     .type = "page->mapping",
                     .fields = {},
                     .links = {{.field = "page", .frame = pfn}, {.field = "mapping", .object = av}}});
      note(av);
    };
    if (only) {
      if (auto* const* av = _mapping.find(only->pfn)) page(only->pfn, *av);
    } else {
      _mapping.for_each(page);
      for (const auto& [vma, member] : _members) note(member.anon_vma);
    }
    std::sort(families.begin(), families.end(), [](auto* a, auto* b) { return a->serial < b->serial; });
    families.erase(std::unique(families.begin(), families.end()), families.end());
    for (const family_anon_vma* av : families) {
      rmap_object_dump d{.key = av, .type = "anon_vma", .fields = {{"vmas", std::to_string(av->vmas)}}, .links = {}};
      av->head.for_each([&](const family_vma& member) { d.links.push_back({.field = "head", .vma = member.vma}); });
      out.push_back(std::move(d));
    }
    return out;
  }

 private:
  void join(vm_area_struct& vma, family_anon_vma* av) {
    auto& member = _members[&vma];
    if (member.anon_vma) return;
    const rmap_lock lock(_m, rmap_lock_class::anon_vma_lock, av);  // anon_vma_link()
    member.vma = &vma;
    member.anon_vma = av;
    av->head.add(member.anon_vma_node);
    av->vmas++;
  }

  machine& _m;
  slab_cache<family_anon_vma> _family_slab;
  std::unordered_map<const vm_area_struct*, family_vma> _members;  // every VMA in some family
  pfn_table<family_anon_vma*> _mapping;                            // folio->mapping
  object_counter _anon_vma_objects{"anon_vma", 24};                // 2.6.7: a spinlock and the list head
  std::uint64_t _serial = 0;
};

}  // namespace
}  // namespace rmapkit::mm::designs

namespace rmapkit::mm {
std::unique_ptr<anon_rmap> make_linux_2_6_7_anon_rmap(machine& m) {
  return std::make_unique<designs::linux_2_6_7_anon_rmap>(m);
}
}  // namespace rmapkit::mm
