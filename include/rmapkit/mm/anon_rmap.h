// The anonymous reverse map as one interface: everything faults, fork, split/merge,
// mremap and exit ask of it goes through these calls, so another design (PTE chains, the
// 2.6.7 anon_vma list, older fork-reuse rules) can replace it without touching them.
//
// What stays outside: the VMA-level anon_vma identity that decides VMA merging
// (vma->anon_vma, its chain) belongs to the kernel being modelled, not to the rmap
// design: designs change costs, never results, so every design keeps that bookkeeping
// and adds its own structures beside it. The linux-6 design is that bookkeeping itself.
//
// The designs live in mm/designs/, one file each, named after the kernel they model;
// mm/designs/registry.cc lists them (a new design is a new file there and one row).
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rmapkit/types.h"

namespace rmapkit::mm {

struct folio;
struct vm_area_struct;
struct mm_struct;
struct rmap_walk_control;
class machine;
class pte_t;

/// One type of object a design allocates, and how many: what `rmapkit compare` prints.
struct rmap_object_count {
  std::string type;  ///< "anon_vma", "anon_vma_chain", "pte_chain", ...
  /// Size of one object in the kernel of the design's era (x86-64, no debug options), so
  /// that bytes compare across designs and with history; the model's own structs differ.
  std::size_t bytes = 0;
  std::uint64_t allocated = 0, freed = 0, peak = 0;
  [[nodiscard]] std::uint64_t live() const { return allocated - freed; }
};

/// The count of objects of @type among @counts (a design's objects()); null when the design
/// has none of that type (pte-chain has no anon_vma).
[[nodiscard]] inline const rmap_object_count* find_object(const std::vector<rmap_object_count>& counts,
                                                          std::string_view type) {
  auto it = std::find_if(counts.begin(), counts.end(), [&](const rmap_object_count& c) { return c.type == type; });
  return it == counts.end() ? nullptr : &*it;
}

/// One object of a design's own reverse map, as `rmapkit show` prints and draws it: the
/// kernel's struct name, its scalar fields and its pointers. Objects are identified by
/// address (@key); the viewer numbers them by first appearance.
struct rmap_object_dump {
  /// A pointer field: to another dumped object, a VMA, a PTE (mm, address) or a frame.
  struct link {
    std::string field;
    const void* object = nullptr;
    const vm_area_struct* vma = nullptr;
    const mm_struct* mm = nullptr;
    vaddr_t addr{};
    pfn_t frame{};
  };
  const void* key = nullptr;
  std::string type;
  std::vector<std::pair<std::string, std::string>> fields;
  std::vector<link> links;
};

/// Counts one object type: allocation, free, and the largest number live at once.
class object_counter {
 public:
  object_counter(std::string type, std::size_t bytes) : _c{std::move(type), bytes} {}
  void alloc() {
    ++_c.allocated;
    _c.peak = std::max(_c.peak, _c.live());
  }
  void free() { ++_c.freed; }
  [[nodiscard]] const rmap_object_count& count() const { return _c; }

 private:
  rmap_object_count _c;
};

/// The anonymous reverse map of one design. The machine keeps the kernel's own VMA-level
/// anon_vma bookkeeping (vma->anon_vma and its chain) for every design, because it
/// decides VMA merges and results must not depend on the design; it calls these hooks
/// beside it. A design keeps its own structures and answers walks from them.
class anon_rmap {
 public:
  virtual ~anon_rmap() = default;
  [[nodiscard]] virtual const char* name() const = 0;
  /// Before the first anonymous page of @vma (anon_vma_prepare()).
  virtual void prepare(vm_area_struct& /*vma*/) {}
  /// @dst becomes a copy of @src: split, mremap, merge (anon_vma_clone()).
  virtual void clone(vm_area_struct& /*dst*/, vm_area_struct& /*src*/) {}
  /// @child is @parent's copy in a forked mm (anon_vma_fork()).
  virtual void fork(vm_area_struct& /*child*/, vm_area_struct& /*parent*/) {}
  /// @vma goes away, or loses its anonymous memory (unlink_anon_vmas()).
  virtual void unlink(vm_area_struct& /*vma*/) {}
  /// @vma's range or pgoff is about to change (@before) or has changed.
  virtual void range_changed(vm_area_struct& /*vma*/, bool /*before*/) {}
  /// A new anonymous folio mapped at @addr (folio_add_new_anon_rmap()).
  virtual void add_new(folio& /*f*/, vm_area_struct& /*vma*/, vaddr_t /*addr*/, bool /*exclusive*/) {}
  /// A COW-reused folio now belongs to @vma alone (folio_move_anon_rmap()).
  virtual void move(folio& /*f*/, vm_area_struct& /*vma*/) {}
  /// @dst replaces @src (migration), before @dst's PTEs are restored.
  virtual void migrate(folio& /*src*/, folio& /*dst*/) {}
  /// A large anonymous folio is split: @page, one of its pages other than the head (@head),
  /// is a folio of its own and keeps the head's page->mapping (__split_huge_page()).
  virtual void split(const folio& /*head*/, folio& /*page*/) {}
  /// Designs that track PTEs (chains) see every change of a PTE mapping an anonymous
  /// folio: @old unmapped (when present) and @now mapped (when present).
  [[nodiscard]] virtual bool wants_pte_events() const { return false; }
  virtual void pte_changed(mm_struct& /*mm*/, vaddr_t /*addr*/, pfn_t /*old*/, pfn_t /*now*/) {}
  /// Visits every VMA that may map @f (rmap_walk_anon()).
  virtual void walk(folio& f, const rmap_walk_control& rwc) = 0;
  /// The objects this design allocated.
  [[nodiscard]] virtual std::vector<rmap_object_count> objects() const = 0;
  /// Bytes it adds to a frame's struct page (2.5's page->pte, LegoOS's first entry);
  /// page->mapping and page->index, which every design uses, are not counted. `compare`
  /// charges them per anonymous frame in use, the frames this reverse map serves.
  [[nodiscard]] virtual std::size_t per_frame_bytes() const { return 0; }
  /// The design's own structures, for `rmapkit show`: all of them, or (@only set) those
  /// that serve that frame. linux-6 has none: its structures are the machine's own.
  [[nodiscard]] virtual std::vector<rmap_object_dump> dump(const folio* /*only*/) const { return {}; }
  /// The design's own invariants; empty when they hold.
  [[nodiscard]] virtual std::string check() const { return {}; }
};

/// The designs a machine can be built with: the default (linux-6) first, then Linux's
/// older ones, newest first (linux-3.19, linux-2.6.34, linux-2.6.7, pte-chain), then legoos.
[[nodiscard]] std::span<const std::string_view> anon_rmap_designs();

/// The design called @name for machine @m; std::invalid_argument names the known ones
/// when there is no such design.
[[nodiscard]] std::unique_ptr<anon_rmap> make_anon_rmap(std::string_view name, machine& m);

}  // namespace rmapkit::mm
