// The historical anonymous reverse maps, each beside the machine's own (linux-6)
// bookkeeping, answering rmap walks from its own structures (linux-rmap.md §6-7,
// anchors.md). They change what a walk visits and what the memory manager allocates,
// never which PTEs map a page: every corpus scenario gives the same report under each.
//
//   linux-3.19    anon_vma + anon_vma_chain + interval tree; fork reuses an ancestor's
//                 anon_vma whose `degree` (VMAs + child anon_vmas) is below two.
//   linux-2.6.34  anon_vma + anon_vma_chain on plain lists; no reuse: every fork of a VMA
//                 with anonymous pages allocates one anon_vma and one AVC per ancestor.
//   linux-2.6.7   one anon_vma per fork family, a plain list of every VMA in it.
//   pte-chain     Linux 2.5: per frame, a direct PTE pointer while mapped once, then
//                 chains of 64-byte blocks of 7 PTE addresses.
//   legoos        LegoOS: per frame, a list of 64-byte entries, the first preallocated
//                 in the frame; insert checks for duplicates; walks stop once they have
//                 seen as many entries as the page has mappings.
#include <array>
#include <stdexcept>
#include <unordered_map>

#include <fmt/format.h>

#include "rmapkit/mm/machine.h"

namespace rmapkit::mm {

namespace {

/// Per-frame state of a design, indexed by pfn.
template <typename T>
class pfn_table {
 public:
  T& operator[](pfn_t pfn) {
    if (pfn.value >= _v.size()) _v.resize(pfn.value + 1);
    return _v[pfn.value];
  }
  template <typename F>
  void for_each(F&& f) const {
    for (std::size_t i = 0; i < _v.size(); ++i) f(pfn_t{i}, _v[i]);
  }

 private:
  std::vector<T> _v;
};

/// Calls rmap_one for @vma if @f's index falls inside it; false when the walk must stop.
bool visit(machine& m, folio& f, vm_area_struct& vma, const rmap_walk_control& rwc) {
  auto addr = machine::vma_address(vma, f.index);
  if (!addr) return true;  // a candidate that cannot map the page: skipped cheaply
  if (rwc.invalid_vma && rwc.invalid_vma(vma)) return true;
  m.stats().vmas_visited++;
  if (!rwc.rmap_one(f, vma, *addr)) return false;
  return !(rwc.done && rwc.done(f));
}

/// The neighbour of @vma that the machine let share its anon_vma
/// (find_mergeable_anon_vma()): designs follow the same decision.
vm_area_struct* anon_vma_neighbour(const vm_area_struct& vma) {
  const auto& mt = vma.vm_mm->mm_mt;
  auto it = mt.find(vma.vm_start.value);
  if (it == mt.end()) return nullptr;
  if (auto next = std::next(it); next != mt.end() && next->second->anon_vma == vma.anon_vma) return next->second;
  if (it != mt.begin() && std::prev(it)->second->anon_vma == vma.anon_vma) return std::prev(it)->second;
  return nullptr;
}

// ---- linux-3.19 and linux-2.6.34: anon_vma + anon_vma_chain -----------------------------------

struct d_avc;

struct d_avc_traits {
  static std::uint64_t start(const d_avc& a);
  static std::uint64_t last(const d_avc& a);
};

struct d_anon_vma {
  d_anon_vma* root = this;
  d_anon_vma* parent = this;
  int refcount = 1;       ///< existence (dropped when its last AVC goes) + one per child on the root
  unsigned degree = 1;    ///< linux-3.19: VMAs using it + child anon_vmas (+1 self-parent on a root)
  std::size_t avcs = 0;   ///< AVCs on it
  list_head<d_avc> head;  ///< linux-2.6.34: its AVCs (same_anon_vma)
};

struct d_avc {
  vm_area_struct* vma = nullptr;
  d_anon_vma* av = nullptr;
  list_head<d_avc> same_vma{this};
  list_head<d_avc> same_anon_vma{this};
  interval_tree_node rb;
  std::uint64_t start = 0, last = 0;
};

std::uint64_t d_avc_traits::start(const d_avc& a) { return a.start; }
std::uint64_t d_avc_traits::last(const d_avc& a) { return a.last; }

using d_avc_tree = interval_tree<d_avc, &d_avc::rb, d_avc_traits>;

struct d_vma {
  d_anon_vma* av = nullptr;
  list_head<d_avc> chain;  ///< newest first, root last
};

class avc_anon_rmap final : public anon_rmap {
 public:
  enum class era { linux_2_6_34, linux_3_19 };
  // Kernel sizes: 3.19's anon_vma is root, rwsem, refcount, degree, parent, rb_root (72
  // bytes), its AVC two pointers, two list links... and an rb node with the subtree end
  // (64); 2.6.34's anon_vma is a spinlock, a refcount and the list head (24: the root
  // pointer came in 2.6.35), its AVC two pointers and two list links (48).
  avc_anon_rmap(machine& m, era e)
      : _m(m),
        _era(e),
        _av_count("anon_vma", e == era::linux_3_19 ? 72 : 24),
        _avc_count("anon_vma_chain", e == era::linux_3_19 ? 64 : 48) {}
  ~avc_anon_rmap() override {
    for (auto& [vma, st] : _vmas) drop_chain(st);
  }
  avc_anon_rmap(const avc_anon_rmap&) = delete;
  avc_anon_rmap& operator=(const avc_anon_rmap&) = delete;

  const char* name() const override { return _era == era::linux_3_19 ? "linux-3.19" : "linux-2.6.34"; }

  void prepare(vm_area_struct& vma) override {
    auto& st = _vmas[&vma];
    d_anon_vma* av = nullptr;
    if (auto* n = anon_vma_neighbour(vma); n && _vmas.count(n)) av = _vmas[n].av;
    if (!av) av = alloc_anon_vma();  // degree 1: its first VMA
    st.av = av;
    link(vma, st, av);
    av->degree++;  // a new root's self-parent reference (a root is never reused), or the VMA's
  }

  void clone(vm_area_struct& dst, vm_area_struct& src) override {
    auto& s = _vmas[&src];
    auto& d = _vmas[&dst];
    copy_chain(dst, d, s, false);
    d.av = s.av;
    if (d.av) d.av->degree++;
  }

  void fork(vm_area_struct& child, vm_area_struct& parent) override {
    auto& p = _vmas[&parent];
    auto& c = _vmas[&child];
    if (!p.av) return;
    copy_chain(child, c, p, _era == era::linux_3_19);
    if (c.av) return;
    auto* av = alloc_anon_vma();
    av->root = p.av->root;
    av->parent = p.av;
    av->root->refcount++;
    c.av = av;
    link(child, c, av);
    av->parent->degree++;
  }

  void unlink(vm_area_struct& vma) override {
    auto it = _vmas.find(&vma);
    if (it == _vmas.end()) return;
    drop_chain(it->second);
    _vmas.erase(it);
  }

  void range_changed(vm_area_struct& vma, bool before) override {
    if (_era != era::linux_3_19) return;
    auto it = _vmas.find(&vma);
    if (it == _vmas.end()) return;
    it->second.chain.for_each([&](d_avc& avc) {
      auto& tree = _trees[avc.av];
      if (before) {
        tree.remove(avc);
      } else {
        avc.start = vma.vm_pgoff.value;
        avc.last = vma.last_pgoff();
        tree.insert(avc);
      }
    });
  }

  void add_new(folio& f, vm_area_struct& vma, vaddr_t, bool exclusive) override {
    d_anon_vma* av = _vmas.at(&vma).av;
    _mapping[f.pfn] = exclusive ? av : av->root;
  }
  void move(folio& f, vm_area_struct& vma) override { _mapping[f.pfn] = _vmas.at(&vma).av; }
  void migrate(folio& src, folio& dst) override {
    auto* av = _mapping[src.pfn];  // a copy: indexing dst may grow the table
    _mapping[dst.pfn] = av;
  }

  void walk(folio& f, const rmap_walk_control& rwc) override {
    d_anon_vma* av = _mapping[f.pfn];
    if (!av) return;
    if (_era == era::linux_3_19) {
      auto& tree = _trees[av];
      const auto pgoff = f.index.value;
      for (auto* avc = tree.iter_first(pgoff, pgoff); avc; avc = tree.iter_next(*avc, pgoff, pgoff)) {
        _m.stats().entries++;
        if (!visit(_m, f, *avc->vma, rwc)) return;
      }
      return;
    }
    // 2.6.34 walks the whole list: every VMA of the family that ever had this anon_vma
    // on its chain, whether or not its range covers the page.
    bool go = true;
    av->head.for_each([&](d_avc& avc) {
      if (!go) return;
      _m.stats().entries++;
      go = visit(_m, f, *avc.vma, rwc);
    });
  }

  std::vector<rmap_object_count> objects() const override { return {_av_count.count(), _avc_count.count()}; }

  std::string check() const override {
    std::size_t linked = 0;
    for (const auto& [vma, st] : _vmas) linked += st.chain.size();
    if (linked != _avc_count.count().live())
      return fmt::format("{}: {} AVCs live but {} on VMA chains", name(), _avc_count.count().live(), linked);
    return {};
  }

 private:
  d_anon_vma* alloc_anon_vma() {
    _av_count.alloc();
    auto* av = _anon_vmas.alloc();
    if (_era == era::linux_3_19) _trees.try_emplace(av);
    return av;
  }

  void put_anon_vma(d_anon_vma* av) {
    if (--av->refcount > 0) return;
    d_anon_vma* root = av->root;
    free_anon_vma(av);
    if (root != av && --root->refcount == 0) free_anon_vma(root);
  }

  void free_anon_vma(d_anon_vma* av) {
    _trees.erase(av);
    _anon_vmas.free(av);
    _av_count.free();
  }

  void link(vm_area_struct& vma, d_vma& st, d_anon_vma* av) {
    auto* avc = _avcs.alloc();
    _avc_count.alloc();
    avc->vma = &vma;
    avc->av = av;
    avc->start = vma.vm_pgoff.value;
    avc->last = vma.last_pgoff();
    st.chain.add(avc->same_vma);
    av->avcs++;
    if (_era == era::linux_3_19) _trees[av].insert(*avc);
    else av->head.add_tail(avc->same_anon_vma);
  }

  /// anon_vma_clone(): @dst gets an AVC for every anon_vma on @src's chain, oldest first;
  /// at fork under the degree rule it may adopt one of them.
  void copy_chain(vm_area_struct& dst, d_vma& d, d_vma& s, bool reuse) {
    s.chain.for_each_reverse([&](d_avc& pavc) {
      link(dst, d, pavc.av);
      if (reuse && !d.av && pavc.av != s.av && pavc.av->degree < 2) d.av = pavc.av;
    });
    if (reuse && d.av) d.av->degree++;
  }

  /// unlink_anon_vmas(), both phases: an anon_vma whose last AVC goes is put after the
  /// others, the root last.
  void drop_chain(d_vma& st) {
    std::vector<d_anon_vma*> emptied;
    st.chain.for_each([&](d_avc& avc) {
      d_anon_vma* av = avc.av;
      if (_era == era::linux_3_19) _trees[av].remove(avc);
      else avc.same_anon_vma.del();
      avc.same_vma.del();
      _avcs.free(&avc);
      _avc_count.free();
      if (--av->avcs == 0) {
        av->parent->degree--;
        emptied.push_back(av);
      }
    });
    if (st.av) st.av->degree--;
    st.av = nullptr;
    for (auto* av : emptied) put_anon_vma(av);
  }

  machine& _m;
  era _era;
  slab_cache<d_anon_vma> _anon_vmas;
  slab_cache<d_avc> _avcs;
  std::unordered_map<const vm_area_struct*, d_vma> _vmas;
  std::unordered_map<const d_anon_vma*, d_avc_tree> _trees;  // linux-3.19: anon_vma->rb_root
  pfn_table<d_anon_vma*> _mapping;                             // folio->mapping
  object_counter _av_count;
  object_counter _avc_count;
};

// ---- linux-2.6.7: one anon_vma per family, a list of VMAs ---------------------------------------

struct f_vma;

struct f_anon_vma {
  list_head<f_vma> head;  ///< every VMA of the family
  std::size_t vmas = 0;
};

struct f_vma {
  vm_area_struct* vma = nullptr;
  f_anon_vma* av = nullptr;
  list_head<f_vma> anon_vma_node{this};
};

class family_anon_rmap final : public anon_rmap {
 public:
  explicit family_anon_rmap(machine& m) : _m(m) {}
  ~family_anon_rmap() override {
    for (auto& [vma, st] : _vmas) st.anon_vma_node.del();
  }
  family_anon_rmap(const family_anon_rmap&) = delete;
  family_anon_rmap& operator=(const family_anon_rmap&) = delete;

  const char* name() const override { return "linux-2.6.7"; }

  void prepare(vm_area_struct& vma) override {
    f_anon_vma* av = nullptr;
    if (auto* n = anon_vma_neighbour(vma); n && _vmas.count(n)) av = _vmas[n].av;
    if (!av) {
      av = _anon_vmas.alloc();
      _av_count.alloc();
    }
    join(vma, av);
  }
  void clone(vm_area_struct& dst, vm_area_struct& src) override {
    if (auto it = _vmas.find(&src); it != _vmas.end() && it->second.av) join(dst, it->second.av);
  }
  void fork(vm_area_struct& child, vm_area_struct& parent) override { clone(child, parent); }

  void unlink(vm_area_struct& vma) override {
    auto it = _vmas.find(&vma);
    if (it == _vmas.end()) return;
    f_anon_vma* av = it->second.av;
    it->second.anon_vma_node.del();
    _vmas.erase(it);
    if (--av->vmas == 0) {
      _anon_vmas.free(av);
      _av_count.free();
    }
  }

  void add_new(folio& f, vm_area_struct& vma, vaddr_t, bool) override { _mapping[f.pfn] = _vmas.at(&vma).av; }
  void migrate(folio& src, folio& dst) override {
    auto* av = _mapping[src.pfn];  // a copy: indexing dst may grow the table
    _mapping[dst.pfn] = av;
  }

  void walk(folio& f, const rmap_walk_control& rwc) override {
    f_anon_vma* av = _mapping[f.pfn];
    if (!av) return;
    bool go = true;
    av->head.for_each([&](f_vma& v) {
      if (!go) return;
      _m.stats().entries++;
      go = visit(_m, f, *v.vma, rwc);
    });
  }

  std::vector<rmap_object_count> objects() const override { return {_av_count.count()}; }

 private:
  void join(vm_area_struct& vma, f_anon_vma* av) {
    auto& st = _vmas[&vma];
    if (st.av) return;
    st.vma = &vma;
    st.av = av;
    av->head.add(st.anon_vma_node);
    av->vmas++;
  }

  machine& _m;
  slab_cache<f_anon_vma> _anon_vmas;
  std::unordered_map<const vm_area_struct*, f_vma> _vmas;
  pfn_table<f_anon_vma*> _mapping;
  object_counter _av_count{"anon_vma", 24};  // 2.6.7: a spinlock and the list head
};

// ---- PTE-tracking designs ---------------------------------------------------------------------

/// A PTE's address as the chains store it: which mm (by its serial) and which page, in
/// one word, as 2.5 stored a pte_addr_t.
class pte_handle {
 public:
  pte_handle() = default;
  pte_handle(const mm_struct& mm, vaddr_t addr) : _v((mm.id << PAGE_BITS) | (addr.value >> PAGE_SHIFT)) {}
  [[nodiscard]] std::uint64_t mm_id() const { return _v >> PAGE_BITS; }
  [[nodiscard]] vaddr_t addr() const { return vaddr_t{(_v & ((std::uint64_t{1} << PAGE_BITS) - 1)) << PAGE_SHIFT}; }
  [[nodiscard]] bool empty() const { return _v == 0; }
  bool operator==(const pte_handle&) const = default;

 private:
  static constexpr unsigned PAGE_BITS = 36;  // 48-bit virtual addresses
  std::uint64_t _v = 0;
};

/// The mms a design has seen, by serial, to turn a handle back into an mm.
class mm_registry {
 public:
  void note(mm_struct& mm) {
    if (mm.id >= _by_id.size()) _by_id.resize(mm.id + 1);
    _by_id[mm.id] = &mm;
  }
  [[nodiscard]] mm_struct& at(std::uint64_t id) const { return *_by_id[id]; }  // ids come from note()

 private:
  std::vector<mm_struct*> _by_id;
};

/// The entries a walk is about to visit, copied first because rmap_one may unmap (and so
/// unchain) the entry it is given. The buffer is reused by the next walk, so a walk
/// allocates nothing; a walk started from inside another gets its own.
class walk_buffer {
 public:
  class lease {
   public:
    explicit lease(walk_buffer& b) : _b(b), _own(b._busy) {
      _b._busy = true;
      v().clear();
    }
    ~lease() {
      if (!_own) _b._busy = false;
    }
    lease(const lease&) = delete;
    lease& operator=(const lease&) = delete;
    std::vector<pte_handle>& v() { return _own ? _local : _b._v; }

   private:
    walk_buffer& _b;
    bool _own;  // the shared buffer was taken by an outer walk
    std::vector<pte_handle> _local;
  };

 private:
  std::vector<pte_handle> _v;
  bool _busy = false;
};

/// Visits the mapping a handle names; false when the walk must stop.
bool visit_pte(machine& m, folio& f, const mm_registry& mms, pte_handle h, const rmap_walk_control& rwc) {
  m.stats().entries++;
  mm_struct& mm = mms.at(h.mm_id());
  vm_area_struct* vma = machine::find_vma(mm, h.addr());
  if (!vma) throw std::logic_error("rmap chain entry outside every VMA");
  if (rwc.invalid_vma && rwc.invalid_vma(*vma)) return true;
  m.stats().vmas_visited++;
  if (!rwc.rmap_one(f, *vma, h.addr())) return false;
  return !(rwc.done && rwc.done(f));
}

/// struct pte_chain: one cache line, 7 PTE addresses and the link to the next block. The
/// head block fills from its end; `idx` is its first used slot.
struct alignas(64) pte_chain {
  static constexpr unsigned NRPTE = 7;
  pte_chain* next = nullptr;
  std::array<pte_handle, NRPTE> ptes{};
};
static_assert(sizeof(pte_chain) == 64);

struct pte_rmap {
  pte_handle direct;          ///< PG_direct: the one mapping, no chain
  pte_chain* chain = nullptr;
  unsigned idx = pte_chain::NRPTE;  ///< first used slot of the head block
};

class pte_chain_anon_rmap final : public anon_rmap {
 public:
  explicit pte_chain_anon_rmap(machine& m) : _m(m) {}
  ~pte_chain_anon_rmap() override {
    _rmap.for_each([&](pfn_t, const pte_rmap& r) {
      for (pte_chain* c = r.chain; c;) {
        pte_chain* next = c->next;
        _chains.free(c);
        c = next;
      }
    });
  }
  pte_chain_anon_rmap(const pte_chain_anon_rmap&) = delete;
  pte_chain_anon_rmap& operator=(const pte_chain_anon_rmap&) = delete;

  const char* name() const override { return "pte-chain"; }
  bool wants_pte_events() const override { return true; }

  void pte_changed(mm_struct& mm, vaddr_t addr, pfn_t old, pfn_t now) override {
    _mms.note(mm);
    const pte_handle h(mm, addr);
    if (old.value) remove(_rmap[old], h);
    if (now.value) add(_rmap[now], h);
  }

  void walk(folio& f, const rmap_walk_control& rwc) override {
    const pte_rmap& r = _rmap[f.pfn];
    if (!r.direct.empty()) {
      const pte_handle h = r.direct;  // a copy: rmap_one may unmap it
      visit_pte(_m, f, _mms, h, rwc);
      return;
    }
    walk_buffer::lease buf(_buf);
    auto& ptes = buf.v();
    unsigned i = r.idx;
    for (const pte_chain* c = r.chain; c; c = c->next, i = 0)
      for (; i < pte_chain::NRPTE; ++i) ptes.push_back(c->ptes[i]);
    for (pte_handle h : ptes)
      if (!visit_pte(_m, f, _mms, h, rwc)) return;
  }

  // Migration entries stay on the old frame's chain; the chain moves to the new frame
  // whole, and the restored PTEs are already on it.
  void migrate(folio& src, folio& dst) override {
    const pte_rmap moved = _rmap[src.pfn];  // a copy: indexing dst may grow the table
    _rmap[src.pfn] = {};
    _rmap[dst.pfn] = moved;
  }

  std::vector<rmap_object_count> objects() const override { return {_count.count()}; }
  std::size_t per_frame_bytes() const override { return sizeof(pte_handle); }  // page->pte: direct or chain

  std::string check() const override {
    std::string bad;
    _rmap.for_each([&](pfn_t pfn, const pte_rmap& r) {
      std::size_t n = r.direct.empty() ? 0 : 1;
      if (n && r.chain) bad = fmt::format("pte-chain: pfn {} has both a direct pointer and a chain", pfn.value);
      unsigned i = r.idx;
      for (const pte_chain* c = r.chain; c; c = c->next, i = 0) n += pte_chain::NRPTE - i;
      const folio& f = _m.folio_of(pfn);
      const auto mapped = f.in_use() && f.is_anon() ? static_cast<std::size_t>(f.mapcount) : 0U;
      if (bad.empty() && n != mapped)
        bad = fmt::format("pte-chain: pfn {} has {} chain entries but {} anon mappings", pfn.value, n, mapped);
    });
    return bad;
  }

 private:
  // page_add_rmap(): the first mapping is direct; the second starts a chain.
  void add(pte_rmap& r, pte_handle h) {
    if (r.direct.empty() && !r.chain) {
      r.direct = h;
      return;
    }
    if (!r.direct.empty()) {
      push(r, r.direct);
      r.direct = {};
    }
    push(r, h);
  }

  void push(pte_rmap& r, pte_handle h) {
    if (!r.chain || r.idx == 0) {
      auto* c = _chains.alloc();
      _count.alloc();
      c->next = r.chain;
      r.chain = c;
      r.idx = pte_chain::NRPTE;
    }
    r.chain->ptes[--r.idx] = h;
    _m.stats().upkeep++;  // page_add_rmap() writes one slot
  }

  // page_remove_rmap(): the entry found is replaced by the head block's newest one; an
  // emptied head block is freed. A chain never turns back into a direct pointer.
  void remove(pte_rmap& r, pte_handle h) {
    if (r.direct == h) {
      r.direct = {};
      return;
    }
    unsigned i = r.idx;
    for (pte_chain* c = r.chain; c; c = c->next, i = 0) {
      for (; i < pte_chain::NRPTE; ++i) {
        _m.stats().upkeep++;  // page_remove_rmap() searches the chain
        if (!(c->ptes[i] == h)) continue;
        pte_chain* head = r.chain;
        c->ptes[i] = head->ptes[r.idx];
        head->ptes[r.idx++] = {};
        if (r.idx == pte_chain::NRPTE) {
          r.chain = head->next;
          r.idx = r.chain ? 0 : pte_chain::NRPTE;  // every block behind the head is full
          _chains.free(head);
          _count.free();
        }
        return;
      }
    }
    throw std::logic_error("pte-chain: removing a PTE that is not on its page's chain");
  }

  machine& _m;
  slab_cache<pte_chain> _chains;
  walk_buffer _buf;
  pfn_table<pte_rmap> _rmap;
  mm_registry _mms;
  object_counter _count{"pte_chain", sizeof(pte_chain)};
};

/// LegoOS's rmap entry: one cache line per mapping.
struct alignas(64) lego_rmap {
  pte_handle pte;
  lego_rmap* next = nullptr;
  bool used = false;
};
static_assert(sizeof(lego_rmap) == 64);

class legoos_anon_rmap final : public anon_rmap {
 public:
  explicit legoos_anon_rmap(machine& m) : _m(m) {}
  ~legoos_anon_rmap() override {
    _first.for_each([&](pfn_t, const lego_rmap& head) {
      for (lego_rmap* e = head.next; e;) {
        lego_rmap* next = e->next;
        _entries.free(e);
        e = next;
      }
    });
  }
  legoos_anon_rmap(const legoos_anon_rmap&) = delete;
  legoos_anon_rmap& operator=(const legoos_anon_rmap&) = delete;

  const char* name() const override { return "legoos"; }
  bool wants_pte_events() const override { return true; }

  void pte_changed(mm_struct& mm, vaddr_t addr, pfn_t old, pfn_t now) override {
    _mms.note(mm);
    const pte_handle h(mm, addr);
    if (old.value) remove(_first[old], h);
    if (now.value) add(_first[now], h);
  }

  void walk(folio& f, const rmap_walk_control& rwc) override {
    // Every mapping has one entry: once as many were seen as the page has mappings,
    // the rest of the list cannot hold another. (Restoring migration entries walks a
    // folio with no mappings yet: then every entry is wanted.)
    const std::size_t want = f.mapcount > 0 ? static_cast<std::size_t>(f.mapcount) : SIZE_MAX;
    walk_buffer::lease buf(_buf);
    auto& ptes = buf.v();
    for (const lego_rmap* e = &_first[f.pfn]; e && ptes.size() < want; e = e->next)
      if (e->used) ptes.push_back(e->pte);
    for (pte_handle h : ptes)
      if (!visit_pte(_m, f, _mms, h, rwc)) return;
  }

  void migrate(folio& src, folio& dst) override {
    const lego_rmap moved = _first[src.pfn];  // a copy: indexing dst may grow the table
    _first[src.pfn] = {};
    _first[dst.pfn] = moved;
  }

  std::vector<rmap_object_count> objects() const override { return {_embedded.count(), _count.count()}; }

  // Walks stop after mapcount entries: that is only right while entries and mappings are
  // one to one.
  std::string check() const override {
    std::string bad;
    _first.for_each([&](pfn_t pfn, const lego_rmap& head) {
      std::size_t n = 0;
      for (const lego_rmap* e = &head; e; e = e->next) n += e->used ? 1 : 0;
      const folio& f = _m.folio_of(pfn);
      const auto mapped = f.in_use() && f.is_anon() ? static_cast<std::size_t>(f.mapcount) : 0U;
      if (bad.empty() && n != mapped)
        bad = fmt::format("legoos: pfn {} has {} rmap entries but {} anon mappings", pfn.value, n, mapped);
    });
    return bad;
  }
  std::size_t per_frame_bytes() const override { return sizeof(lego_rmap); }  // the preallocated entry

 private:
  void add(lego_rmap& head, pte_handle h) {
    for (const lego_rmap* e = &head; e; e = e->next) {
      _m.stats().upkeep++;  // the duplicate check reads every entry
      if (e->used && e->pte == h) throw std::logic_error("legoos: a mapping added twice (LegoOS BUGs here)");
    }
    if (!head.used) {
      head.pte = h;
      head.used = true;
      _embedded.alloc();
      return;
    }
    auto* e = _entries.alloc();
    _count.alloc();
    e->pte = h;
    e->used = true;
    e->next = head.next;
    head.next = e;
  }

  void remove(lego_rmap& head, pte_handle h) {
    if (head.used && head.pte == h) {
      head.used = false;
      _embedded.free();
      return;
    }
    for (lego_rmap* prev = &head; prev->next; prev = prev->next) {
      lego_rmap* e = prev->next;
      _m.stats().upkeep++;  // the removal searches the list
      if (!(e->pte == h)) continue;
      prev->next = e->next;
      _entries.free(e);
      _count.free();
      return;
    }
    throw std::logic_error("legoos: removing a mapping that has no rmap entry");
  }

  machine& _m;
  slab_cache<lego_rmap> _entries;
  walk_buffer _buf;
  pfn_table<lego_rmap> _first;  // the entry preallocated in every frame
  mm_registry _mms;
  // The entry in the frame is counted in per_frame_bytes(), whether used or not.
  object_counter _embedded{"lego_rmap in the frame (used)", 0};
  object_counter _count{"lego_rmap", sizeof(lego_rmap)};
};

}  // namespace

std::unique_ptr<anon_rmap> make_linux_3_19_anon_rmap(machine& m) {
  return std::make_unique<avc_anon_rmap>(m, avc_anon_rmap::era::linux_3_19);
}
std::unique_ptr<anon_rmap> make_linux_2_6_34_anon_rmap(machine& m) {
  return std::make_unique<avc_anon_rmap>(m, avc_anon_rmap::era::linux_2_6_34);
}
std::unique_ptr<anon_rmap> make_linux_2_6_7_anon_rmap(machine& m) { return std::make_unique<family_anon_rmap>(m); }
std::unique_ptr<anon_rmap> make_pte_chain_anon_rmap(machine& m) { return std::make_unique<pte_chain_anon_rmap>(m); }
std::unique_ptr<anon_rmap> make_legoos_anon_rmap(machine& m) { return std::make_unique<legoos_anon_rmap>(m); }

}  // namespace rmapkit::mm
