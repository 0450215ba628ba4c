// LegoOS's reverse map (the memory component of LegoOS, a research OS for disaggregated
// hardware, 2018): PTE-based like 2.5's (pte_chain.cc), but simpler. Per frame, a list
// of one-cache-line entries, the first preallocated in the frame itself; an insert
// reads the whole list to check for a duplicate (so n processes forked from one sharing
// a page cost O(n^2) reads); a walk stops once it has seen as many entries as the page
// has mappings. It shows what a design without object-based sharing costs
// in memory per mapping (64 bytes) and in upkeep on fork, against 2.5's and Linux's.
#include <cstdint>

#include <fmt/format.h>

#include "support.h"

namespace rmapkit::mm::designs {
namespace {

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
    _mm_by_id.note(mm);
    const pte_handle h(mm, addr);
    change_pte_entries(
        _m, rmap_lock_class::pcache_lock, _walking, old, now, [&](pfn_t pfn) { remove(_first[pfn], h); },
        [&](pfn_t pfn) { add(_first[pfn], h); });
  }

  void walk(folio& f, const rmap_walk_control& rwc) override {
    if (f.order > 0) return walk_large(f, rwc);
    // Every mapping has one entry: once as many were seen as the page has mappings,
    // the rest of the list cannot hold another. (Restoring migration entries walks a
    // folio with no mappings yet: then every entry is wanted.)
    const std::size_t want = f.mapcount > 0 ? static_cast<std::size_t>(f.mapcount) : SIZE_MAX;
    rmap_trace(_m, [&] {
      return walk_step{.what = walk_step::kind::start, .name = "pcache rmap list", .object = &_first[f.pfn]};
    });
    const rmap_lock lock(_m, rmap_lock_class::pcache_lock, std::uintptr_t{f.pfn.value}, "pcache_lock", &_first[f.pfn]);
    const walking_frame walking(_walking, f.pfn);
    walk_buffer::lease buf(_buf);
    auto& ptes = buf.v();
    for (const lego_rmap* e = &_first[f.pfn]; e && ptes.size() < want; e = e->next)
      if (e->used) ptes.push_back(e->pte);
    for (pte_handle h : ptes)
      if (!visit_pte(_m, f, _mm_by_id, h, rwc)) return;
  }

  // A large folio: each frame's list, as for a page (a PMD is one entry in the head
  // frame's), each read up to its page's mappings; the walk reads every page's list.
  void walk_large(folio& f, const rmap_walk_control& rwc) {
    rmap_trace(_m, [&] {
      return walk_step{
          .what = walk_step::kind::start, .name = "pcache rmap list of each page", .object = &_first[f.pfn]};
    });
    const rmap_lock lock(_m, rmap_lock_class::pcache_lock, std::uintptr_t{f.pfn.value}, "pcache_lock", &_first[f.pfn]);
    const walking_frame walking(_walking, f.pfn);
    walk_buffer::lease buf(_buf);
    (void)visit_large_folio(
        _m, f, _mm_by_id, buf.v(),
        [&](pfn_t pfn, std::vector<pte_handle>& out) {
          const lego_rmap* head = _first.find(pfn);
          std::size_t want = anon_mappings_of(_m, pfn);
          for (const lego_rmap* e = head; e && want > 0; e = e->next)
            if (e->used) out.push_back(e->pte), --want;
        },
        rwc);
  }

  void migrate(folio& src, folio& dst) override {
    const lego_rmap moved = _first[src.pfn];  // a copy: indexing dst may grow the table
    _first[src.pfn] = {};
    _first[dst.pfn] = moved;
  }

  std::vector<rmap_object_count> objects() const override {
    return {_in_frame_objects.count(), _entry_objects.count()};
  }

  // Each frame's list: the first entry in the frame's own metadata, the rest allocated.
  std::vector<rmap_object_dump> dump(const folio* only) const override {
    std::vector<rmap_object_dump> out;
    auto one = [&](pfn_t pfn, const lego_rmap& head) {
      if (!head.used && !head.next) return;
      for (const lego_rmap* e = &head; e; e = e->next) {
        rmap_object_dump d{.key = e, .type = "lego_rmap", .fields = {}, .links = {}};
        if (e == &head) {
          d.fields.emplace_back("in_frame", "1");  // the first entry lives in the frame's metadata
          d.links.push_back({.field = "page", .frame = pfn});
        }
        if (e->used) d.links.push_back(pte_link("pte", _mm_by_id.at(e->pte.mm_id()), e->pte));
        else d.fields.emplace_back("used", "0");
        if (e->next) d.links.push_back({.field = "next", .object = e->next});
        out.push_back(std::move(d));
      }
    };
    if (!only) _first.for_each(one);
    else if (const lego_rmap* h = _first.find(only->pfn)) one(only->pfn, *h);
    return out;
  }

  // Walks stop after mapcount entries: that is only right while entries and mappings are
  // one to one.
  std::string check() const override {
    std::string bad;
    _first.for_each([&](pfn_t pfn, const lego_rmap& head) {
      std::size_t n = 0;
      for (const lego_rmap* e = &head; e; e = e->next) n += e->used ? 1 : 0;
      const std::size_t mapped = anon_mappings_of(_m, pfn);
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
      _in_frame_objects.alloc();
      return;
    }
    auto* e = _entries.alloc();
    _entry_objects.alloc();
    e->pte = h;
    e->used = true;
    e->next = head.next;
    head.next = e;
  }

  void remove(lego_rmap& head, pte_handle h) {
    if (head.used && head.pte == h) {
      head.used = false;
      _in_frame_objects.free();
      return;
    }
    for (lego_rmap* prev = &head; prev->next; prev = prev->next) {
      lego_rmap* e = prev->next;
      _m.stats().upkeep++;  // the removal searches the list
      if (!(e->pte == h)) continue;
      prev->next = e->next;
      _entries.free(e);
      _entry_objects.free();
      return;
    }
    throw std::logic_error("legoos: removing a mapping that has no rmap entry");
  }

  machine& _m;
  pfn_t _walking{};  // the frame a walk in progress holds the lock of
  slab_cache<lego_rmap> _entries;
  walk_buffer _buf;
  pfn_table<lego_rmap> _first;  // the entry preallocated in every frame
  mm_registry _mm_by_id;
  // The entry in the frame is counted in per_frame_bytes(), whether used or not.
  object_counter _in_frame_objects{"lego_rmap in the frame (used)", 0};
  object_counter _entry_objects{"lego_rmap", sizeof(lego_rmap)};
};

}  // namespace
}  // namespace rmapkit::mm::designs

namespace rmapkit::mm {
std::unique_ptr<anon_rmap> make_legoos_anon_rmap(machine& m) { return std::make_unique<designs::legoos_anon_rmap>(m); }
}  // namespace rmapkit::mm
