// The file reverse map as one interface, beside the anonymous one (anon_rmap.h): how an
// rmap walk finds the VMAs that may map a page-cache page, through the file's
// address_space. Linux did it three ways:
//
//   list           2.5 to 2.6.6: i_mmap and i_mmap_shared, plain lists of the file's
//                  private and shared VMAs; a walk visits every VMA of the file.
//   prio-tree      2.6.7 to 3.6: a radix priority search tree over [vm_pgoff, last]
//                  (include/rmapkit/prio_tree.h); VMAs with equal ranges share a node.
//   interval-tree  3.7 on (the default): an augmented red-black interval tree, the
//                  machine's own address_space->i_mmap.
//
// The machine keeps i_mmap for every design (the views draw it and the checker checks
// it) and tells the design of every VMA linked to or unlinked from a file, and of every
// range change; a design keeps its own structure beside it and answers walks from it.
// Designs change costs, never results. A machine's design name is ANON[+FILE]
// (`linux-2.6.7+prio-tree`); FILE defaults to interval-tree.
//
// Nonlinear mappings (remap_file_pages(), and the i_mmap_nonlinear list beside the prio
// tree) are outside the scenario language, as they are outside the kernel since 4.0.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rmapkit/mm/anon_rmap.h"

namespace rmapkit::mm {

struct address_space;

class file_rmap {
 public:
  virtual ~file_rmap() = default;
  [[nodiscard]] virtual const char* name() const = 0;
  /// @vma now maps its file (vma_link_file()).
  virtual void link(vm_area_struct& vma) = 0;
  /// @vma, fork's copy of @parent, is linked right after it (dup_mmap()).
  virtual void link_after(vm_area_struct& vma, vm_area_struct& /*parent*/) { link(vma); }
  /// @vma no longer maps its file (vma_unlink_file()).
  virtual void unlink(vm_area_struct& vma) = 0;
  /// @vma's range or pgoff is about to change (@before) or has changed.
  virtual void range_changed(vm_area_struct& vma, bool before) = 0;
  /// Visits every VMA that may map @f's page of its file (rmap_walk_file()).
  virtual void walk(folio& f, const rmap_walk_control& rwc) = 0;
  /// The index entries the design keeps (one per linked VMA: they live inside the VMA).
  [[nodiscard]] virtual std::vector<rmap_object_count> objects() const = 0;
  /// The design's own structures, for `rmapkit show`: all files' (@only null) or those of
  /// the file of @only. interval-tree has none: its structure is the machine's i_mmap.
  [[nodiscard]] virtual std::vector<rmap_object_dump> dump(const folio* /*only*/) const { return {}; }
  /// The design's own invariants; empty when they hold.
  [[nodiscard]] virtual std::string check() const { return {}; }
};

/// The file designs, the default (interval-tree) first, then the older ones, newest first.
[[nodiscard]] std::span<const std::string_view> file_rmap_designs();

/// The file design called @name for machine @m; std::invalid_argument names the known ones.
[[nodiscard]] std::unique_ptr<file_rmap> make_file_rmap(std::string_view name, machine& m);

/// KSM's stable tree designs: `ksm-chains` (4.13 on, the default: a KSM page takes at most
/// max_page_sharing = 256 mappings, then a dup starts a chain) and `ksm-flat` (before: one
/// stable node and one KSM page per content, whatever its sharers). Unlike the anonymous
/// and file designs, this one changes results: past 256 sharers of one content, ksm-flat
/// maps them all to one page where the kernel (and ksm-chains) makes more.
[[nodiscard]] std::span<const std::string_view> ksm_rmap_designs();

/// A machine's design name split into its parts: "linux-6" is {"linux-6", "interval-tree",
/// "ksm-chains"}; "linux-2.6.7+prio-tree+ksm-flat" is {"linux-2.6.7", "prio-tree",
/// "ksm-flat"}. The parts after ANON may come in either order. std::invalid_argument
/// (naming the known designs) when a part is unknown or given twice.
struct rmap_design_name {
  std::string anon, file, ksm = "ksm-chains";
  /// The canonical name: ANON, then +FILE and +KSM where they are not the defaults.
  [[nodiscard]] std::string full() const;
};
[[nodiscard]] rmap_design_name parse_design(std::string_view name);

/// Every combination of an anonymous and a file design, by canonical name: each anonymous
/// design with the default file design first (the names anon_rmap_designs() lists), then
/// each with every other file design.
[[nodiscard]] std::vector<std::string> rmap_design_combinations();

}  // namespace rmapkit::mm
