// Internal to the mm library (not installed): what the historical anonymous reverse maps
// share, and the factory of every design. Each design lives in its own file of this
// directory, named after the kernel it models; registry.cc lists them by name.
//
// A design keeps its own structures beside the machine's linux-6 bookkeeping (which
// decides VMA merges, so results never depend on the design) and answers rmap walks
// from them. Designs change what a walk visits and what the memory manager allocates,
// never which PTEs map a page: every corpus scenario gives the same report under each.
// The designs and what they are:
//
//   linux-6       anon_vma + anon_vma_chain + interval tree, fork-time reuse decided by
//                 num_children and num_active_vmas: the machine's own bookkeeping.
//   linux-3.19    the same, but fork reuses an ancestor's anon_vma whose `degree` (VMAs +
//                 child anon_vmas) is below two.
//   linux-2.6.34  anon_vma + anon_vma_chain on plain lists; no reuse: every fork of a VMA
//                 with anonymous pages allocates one anon_vma and one AVC per ancestor.
//   linux-2.6.7   one anon_vma per fork family, a plain list of every VMA in it.
//   pte-chain     Linux 2.5: per frame, a direct PTE pointer while mapped once, then
//                 chains of 64-byte blocks of 7 PTE addresses.
//   legoos        LegoOS: per frame, a list of 64-byte entries, the first preallocated
//                 in the frame; insert checks for duplicates; walks stop once they have
//                 seen as many entries as the page has mappings.
//
// The anon_vma designs hear of VMAs (prepare, clone, fork, unlink) and new folios; the
// PTE designs hear of every PTE write that maps or unmaps an anonymous page
// (pte_observer.cc). Every design hands each candidate it finds to rmap_visit().
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

#include "../rmap_walk.h"
#include "rmapkit/mm/anon_rmap.h"
#include "rmapkit/mm/file_rmap.h"
#include "rmapkit/mm/machine.h"

namespace rmapkit::mm {

// ---- the designs (one file each) --------------------------------------------------------

std::unique_ptr<anon_rmap> make_linux_6_anon_rmap(machine& m);       // linux_6.cc
std::unique_ptr<anon_rmap> make_linux_3_19_anon_rmap(machine& m);    // linux_3_19.cc
std::unique_ptr<anon_rmap> make_linux_2_6_34_anon_rmap(machine& m);  // linux_2_6_34.cc
std::unique_ptr<anon_rmap> make_linux_2_6_7_anon_rmap(machine& m);   // linux_2_6_7.cc
std::unique_ptr<anon_rmap> make_pte_chain_anon_rmap(machine& m);     // pte_chain.cc
std::unique_ptr<anon_rmap> make_legoos_anon_rmap(machine& m);        // legoos.cc

std::unique_ptr<file_rmap> make_interval_tree_file_rmap(machine& m);  // i_mmap_interval_tree.cc
std::unique_ptr<file_rmap> make_prio_tree_file_rmap(machine& m);      // i_mmap_prio_tree.cc
std::unique_ptr<file_rmap> make_list_file_rmap(machine& m);           // i_mmap_list.cc

namespace designs {

// ---- shared by every design -------------------------------------------------------------

/// A design's state for each frame (its page->mapping, page->pte, first rmap entry),
/// indexed by pfn and grown on demand: the frame table is the machine's, and a design
/// must not widen struct folio for every other design.
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
  /// The entry of @pfn, or null when the table never grew that far.
  [[nodiscard]] const T* find(pfn_t pfn) const { return pfn.value < _v.size() ? &_v[pfn.value] : nullptr; }

 private:
  std::vector<T> _v;
};

// ---- shared by the anon_vma designs (linux-3.19, linux-2.6.34, linux-2.6.7) --------------

/// The neighbour of @vma that the machine let share its anon_vma when it prepared it
/// (find_mergeable_anon_vma()), or null. A design gives @vma that neighbour's anon_vma
/// too, so its anon_vmas follow the same merge decisions as the machine's.
inline vm_area_struct* anon_vma_neighbour(const vm_area_struct& vma) {
  const auto& mt = vma.vm_mm->mm_mt;
  auto it = mt.find(vma.vm_start.value);
  if (it == mt.end()) return nullptr;
  if (auto next = std::next(it); next != mt.end() && next->second->anon_vma == vma.anon_vma) return next->second;
  if (it != mt.begin() && std::prev(it)->second->anon_vma == vma.anon_vma) return std::prev(it)->second;
  return nullptr;
}

// ---- shared by the PTE designs (pte-chain, legoos) ----------------------------------------

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

/// Whether a design's page->mapping of @f is current: designs leave the entry of a frame
/// that was freed or unmapped behind (as the kernel leaves page->mapping), and its
/// anon_vma may be gone; only a mapped anonymous folio's is sure to be alive.
inline bool mapped_anon(const folio& f) { return f.in_use() && f.is_anon() && !f.is_ksm() && f.mapped(); }

/// A link to the PTE @h names, for a design's dump.
inline rmap_object_dump::link pte_link(std::string field, const mm_struct& mm, pte_handle h) {
  return {.field = std::move(field), .mm = &mm, .addr = h.addr()};
}

/// The mms a design has seen, by serial, to turn a pte_handle back into an mm.
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

/// The frame whose rmap lock a walk holds while it walks (set for the walk's scope): a PTE
/// change of that frame inside the walk (try_to_unmap's) is made under the lock already
/// held, so it takes no lock of its own.
class walking_frame {
 public:
  walking_frame(pfn_t& slot, pfn_t now) : _slot(slot), _prev(std::exchange(slot, now)) {}
  ~walking_frame() { _slot = _prev; }
  walking_frame(const walking_frame&) = delete;
  walking_frame& operator=(const walking_frame&) = delete;

 private:
  pfn_t& _slot;
  pfn_t _prev;
};

/// The per-frame rmap lock of a PTE design (2.5's pte_chain_lock, LegoOS's), taken to change
/// @pfn's entries unless the walk in progress holds it already.
inline std::optional<rmap_lock> frame_lock(machine& m, rmap_lock_class c, pfn_t pfn, pfn_t walking) {
  if (pfn.value == walking.value) return std::nullopt;
  return std::optional<rmap_lock>{std::in_place, m, c, std::uintptr_t{pfn.value}};
}

/// A PTE design's pte_changed(): @old's entries lose the mapping (@remove) and @now's gain
/// it (@add), each under its frame's lock (frame_lock()).
template <typename Remove, typename Add>
void change_pte_entries(machine& m, rmap_lock_class c, pfn_t walking, pfn_t old, pfn_t now, Remove&& remove,
                        Add&& add) {
  if (old.value) {
    const auto lock = frame_lock(m, c, old, walking);
    remove(old);
  }
  if (now.value) {
    const auto lock = frame_lock(m, c, now, walking);
    add(now);
  }
}

/// The VMA a chain entry's PTE lies in, found from its address (a PTE design keeps no VMA
/// pointers), the entry traced and counted as the walk reads it.
inline vm_area_struct& chain_entry_vma(machine& m, const mm_registry& mms, pte_handle h) {
  mm_struct& mm = mms.at(h.mm_id());
  rmap_trace(m, [&] {
    return walk_step{.what = walk_step::kind::source, .name = "pte (mm, address)", .mm = &mm, .addr = h.addr()};
  });
  vm_area_struct* vma = machine::find_vma(mm, h.addr());
  rmap_entry(m, "pte", nullptr, vma);
  if (!vma) throw std::logic_error("rmap chain entry outside every VMA");
  return *vma;
}

/// A large folio's walk under a PTE design: the entries of every page's chain (@entries_of
/// appends a page's to the buffer), each VMA they lead to visited once, as the object-based
/// walks do: rmap_one of a large folio handles all of the folio that the VMA maps. An entry
/// of a PMD sits on the head page's chain, at the PMD's address.
template <typename EntriesOf>
bool visit_large_folio(machine& m, folio& f, const mm_registry& mms, std::vector<pte_handle>& ptes,
                       EntriesOf&& entries_of, const rmap_walk_control& rwc) {
  for (std::uint64_t i = 0; i < f.nr_pages(); ++i) entries_of(pfn_t{f.pfn.value + i}, ptes);
  std::vector<vm_area_struct*> vmas;
  for (pte_handle h : ptes) {
    vm_area_struct* vma = &chain_entry_vma(m, mms, h);
    if (std::find(vmas.begin(), vmas.end(), vma) == vmas.end()) vmas.push_back(vma);
  }
  for (vm_area_struct* vma : vmas)
    if (!rmap_visit(m, f, *vma, rmap_candidates::cover_the_page, rwc)) return false;
  return true;
}

/// What a frame's entries must number: its page's PTEs, and on a large folio's head page its
/// PMDs; nothing when the frame is not part of an anonymous folio.
inline std::size_t anon_mappings_of(const machine& m, pfn_t pfn) {
  const folio& head = m.page_folio(pfn);
  if (!head.in_use() || !head.is_anon()) return 0;
  const auto ptes = static_cast<std::size_t>(m.folio_of(pfn).mapcount);
  if (head.order == 0 || head.pfn != pfn) return ptes;
  return ptes + static_cast<std::size_t>(m.large_state(head).entire_mapcount);
}

/// Visits the mapping a chain entry names (chain_entry_vma(), then rmap_visit()). False when
/// the walk must stop.
inline bool visit_pte(machine& m, folio& f, const mm_registry& mms, pte_handle h, const rmap_walk_control& rwc) {
  return rmap_visit(m, f, chain_entry_vma(m, mms, h), h.addr(), rwc);
}

}  // namespace designs
}  // namespace rmapkit::mm
