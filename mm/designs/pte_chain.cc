// Linux 2.5's reverse map (mm/rmap.c, 2.5.x up to 2.6.6): PTE-based. Each physical page
// records every PTE that maps it: while it is mapped once, a direct pointer in struct
// page (PG_direct); from the second mapping on, a chain of cache-line blocks of 7 PTE
// addresses (struct pte_chain). A walk visits exactly the mappings, never a VMA that
// misses the page; the price is paid on every map and unmap (a chain entry written, a
// chain searched) and in memory per mapping, which for fork-heavy workloads grew to
// dominate and led to the object-based anon_vma of 2.6.7 (linux_2_6_7.cc).
#include <array>

#include <fmt/format.h>

#include "support.h"

namespace rmapkit::mm::designs {
namespace {

/// struct pte_chain: one cache line, 7 PTE addresses and the link to the next block. The
/// head block fills from its end; `idx` is its first used slot.
struct alignas(64) pte_chain {
  static constexpr unsigned NRPTE = 7;
  pte_chain* next = nullptr;
  std::array<pte_handle, NRPTE> ptes{};
};
static_assert(sizeof(pte_chain) == 64);

/// What 2.5 kept in struct page for its reverse map: page->pte, a direct PTE or a chain.
struct pte_rmap {
  pte_handle direct;  ///< PG_direct: the one mapping, no chain
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
    _mm_by_id.note(mm);
    const pte_handle h(mm, addr);
    change_pte_entries(
        _m, rmap_lock_class::pte_chain_lock, _walking, old, now, [&](pfn_t pfn) { remove(_rmap[pfn], h); },
        [&](pfn_t pfn) { add(_rmap[pfn], h); });
  }

  void walk(folio& f, const rmap_walk_control& rwc) override {
    if (f.order > 0) return walk_large(f, rwc);
    const pte_rmap& r = _rmap[f.pfn];
    rmap_trace(_m, [&] {
      return walk_step{.what = walk_step::kind::start,
                       .name = r.direct.empty() ? "page->pte.chain" : "page->pte.direct",
                       .object = &r};
    });
    const rmap_lock lock(_m, rmap_lock_class::pte_chain_lock, std::uintptr_t{f.pfn.value}, "pte_chain_lock", &r);
    const walking_frame walking(_walking, f.pfn);
    if (!r.direct.empty()) {
      const pte_handle h = r.direct;  // a copy: rmap_one may unmap it
      visit_pte(_m, f, _mm_by_id, h, rwc);
      return;
    }
    walk_buffer::lease buf(_buf);
    auto& ptes = buf.v();
    unsigned i = r.idx;
    for (const pte_chain* c = r.chain; c; c = c->next, i = 0)
      for (; i < pte_chain::NRPTE; ++i) ptes.push_back(c->ptes[i]);
    for (pte_handle h : ptes)
      if (!visit_pte(_m, f, _mm_by_id, h, rwc)) return;
  }

  // A large folio: each page keeps its own chain (2.5's page->pte is in every struct page),
  // and a PMD is one entry on the head page's; the walk reads every page's chain.
  void walk_large(folio& f, const rmap_walk_control& rwc) {
    rmap_trace(_m, [&] {
      return walk_step{.what = walk_step::kind::start, .name = "page->pte of each page", .object = &_rmap[f.pfn]};
    });
    const rmap_lock lock(_m, rmap_lock_class::pte_chain_lock, std::uintptr_t{f.pfn.value}, "pte_chain_lock",
                         &_rmap[f.pfn]);
    const walking_frame walking(_walking, f.pfn);
    walk_buffer::lease buf(_buf);
    (void)visit_large_folio(
        _m, f, _mm_by_id, buf.v(),
        [&](pfn_t pfn, std::vector<pte_handle>& out) {
          const pte_rmap* r = _rmap.find(pfn);
          if (!r) return;
          if (!r->direct.empty()) out.push_back(r->direct);
          unsigned i = r->idx;
          for (const pte_chain* c = r->chain; c; c = c->next, i = 0)
            for (; i < pte_chain::NRPTE; ++i) out.push_back(c->ptes[i]);
        },
        rwc);
  }

  // Migration entries stay on the old frame's chain; the chain moves to the new frame
  // whole, and the restored PTEs are already on it.
  void migrate(folio& src, folio& dst) override {
    const pte_rmap moved = _rmap[src.pfn];  // a copy: indexing dst may grow the table
    _rmap[src.pfn] = {};
    _rmap[dst.pfn] = moved;
  }

  std::vector<rmap_object_count> objects() const override { return {_chain_objects.count()}; }

  // struct page's page->pte of each anonymous frame, and its chain blocks.
  std::vector<rmap_object_dump> dump(const folio* only) const override {
    std::vector<rmap_object_dump> out;
    auto one = [&](pfn_t pfn, const pte_rmap& r) {
      if (r.direct.empty() && !r.chain) return;
      rmap_object_dump page{.key = &r, .type = "page->pte", .fields = {}, .links = {}};
      page.links.push_back({.field = "page", .frame = pfn});
      if (!r.direct.empty()) page.links.push_back(pte_link("direct", _mm_by_id.at(r.direct.mm_id()), r.direct));
      if (r.chain) page.links.push_back({.field = "chain", .object = r.chain});
      out.push_back(std::move(page));
      unsigned i = r.idx;
      for (const pte_chain* c = r.chain; c; c = c->next, i = 0) {
        rmap_object_dump block{.key = c, .type = "pte_chain", .fields = {}, .links = {}};
        for (unsigned k = i; k < pte_chain::NRPTE; ++k)
          block.links.push_back(pte_link(fmt::format("ptes[{}]", k), _mm_by_id.at(c->ptes[k].mm_id()), c->ptes[k]));
        if (c->next) block.links.push_back({.field = "next", .object = c->next});
        out.push_back(std::move(block));
      }
    };
    if (!only) _rmap.for_each(one);
    else if (const pte_rmap* r = _rmap.find(only->pfn)) one(only->pfn, *r);
    return out;
  }
  std::size_t per_frame_bytes() const override { return sizeof(pte_handle); }  // page->pte: direct or chain

  std::string check() const override {
    std::string bad;
    _rmap.for_each([&](pfn_t pfn, const pte_rmap& r) {
      std::size_t n = r.direct.empty() ? 0 : 1;
      if (n && r.chain) bad = fmt::format("pte-chain: pfn {} has both a direct pointer and a chain", pfn.value);
      unsigned i = r.idx;
      for (const pte_chain* c = r.chain; c; c = c->next, i = 0) n += pte_chain::NRPTE - i;
      const std::size_t mapped = anon_mappings_of(_m, pfn);
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
      _chain_objects.alloc();
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
          _chain_objects.free();
        }
        return;
      }
    }
    throw std::logic_error("pte-chain: removing a PTE that is not on its page's chain");
  }

  machine& _m;
  pfn_t _walking{};  // the frame a walk in progress holds the lock of
  slab_cache<pte_chain> _chains;
  walk_buffer _buf;
  pfn_table<pte_rmap> _rmap;
  mm_registry _mm_by_id;
  object_counter _chain_objects{"pte_chain", sizeof(pte_chain)};
};

}  // namespace
}  // namespace rmapkit::mm::designs

namespace rmapkit::mm {
std::unique_ptr<anon_rmap> make_pte_chain_anon_rmap(machine& m) {
  return std::make_unique<designs::pte_chain_anon_rmap>(m);
}
}  // namespace rmapkit::mm
