// The anonymous reverse map as one interface: everything faults, fork, split/merge,
// mremap and exit ask of it goes through these calls, so another design (PTE chains, the
// 2.6.7 anon_vma list, older fork-reuse rules) can replace it without touching them.
//
// What stays outside: the VMA-level anon_vma identity that decides VMA merging
// (vma->anon_vma, its chain) belongs to the kernel being modelled, not to the rmap
// design: designs change costs, never results, so every design keeps that bookkeeping
// and adds its own structures beside it.
#pragma once

#include <memory>
#include <span>
#include <string_view>

#include "rmapkit/types.h"

namespace rmapkit::mm {

struct folio;
struct vm_area_struct;
struct rmap_walk_control;
class machine;

class anon_rmap {
 public:
  virtual ~anon_rmap() = default;
  [[nodiscard]] virtual const char* name() const = 0;
  /// Before the first anonymous page of @vma (anon_vma_prepare()).
  virtual int prepare(vm_area_struct& vma) = 0;
  /// @dst becomes a copy of @src: split, mremap, merge (anon_vma_clone()).
  virtual void clone(vm_area_struct& dst, vm_area_struct& src) = 0;
  /// @child is @parent's copy in a forked mm (anon_vma_fork()).
  virtual void fork(vm_area_struct& child, vm_area_struct& parent) = 0;
  /// @vma goes away, or loses its anonymous memory (unlink_anon_vmas()).
  virtual void unlink(vm_area_struct& vma) = 0;
  /// A new anonymous folio mapped at @addr (folio_add_new_anon_rmap()).
  virtual void add_new(folio& f, vm_area_struct& vma, vaddr_t addr, bool exclusive) = 0;
  /// One more mapping of an existing anonymous folio (folio_add_anon_rmap_pte()).
  virtual void add(folio& f, vm_area_struct& vma, vaddr_t addr, bool exclusive) = 0;
  /// A COW-reused folio now belongs to @vma alone (folio_move_anon_rmap()).
  virtual void move(folio& f, vm_area_struct& vma) = 0;
  /// Visits every VMA that may map @f (rmap_walk_anon()).
  virtual void walk(folio& f, const rmap_walk_control& rwc) = 0;
};

/// The designs a machine can be built with, the default (linux-6) first.
[[nodiscard]] std::span<const std::string_view> anon_rmap_designs();

/// The design called @name for machine @m; std::invalid_argument names the known ones
/// when there is no such design.
[[nodiscard]] std::unique_ptr<anon_rmap> make_anon_rmap(std::string_view name, machine& m);

}  // namespace rmapkit::mm
