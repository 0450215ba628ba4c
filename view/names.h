// Internal to the view library: the stable ids of one moment of a session (state.h says
// how each kind of object is numbered). Built with one pass over the page tables and one
// over the frame table, no copy of either: what `show --frame K` pays for one frame.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "rmapkit/model/session.h"
#include "rmapkit/view/state.h"

namespace rmapkit::view::detail {

/// A VMA in the canonical order, with the region it belongs to.
struct vma_entry {
  const mm::vm_area_struct* vma = nullptr;
  std::string id;  ///< vmaN
  std::string process, region;
  vaddr_t base;  ///< the region's base
};

class names {
 public:
  /// Called for every PTE in canonical order with the id its frame got (0: not a frame).
  using pte_visitor = std::function<void(const vma_entry&, vaddr_t, mm::pte_t, std::uint64_t)>;

  explicit names(const model::session& s, const pte_visitor& on_pte = {});

  [[nodiscard]] const std::vector<vma_entry>& vmas() const { return _vmas; }
  [[nodiscard]] const vma_entry* vma(const mm::vm_area_struct* v) const;
  [[nodiscard]] std::string vma_id(const mm::vm_area_struct* v) const;

  [[nodiscard]] std::optional<std::uint64_t> frame_id(pfn_t pfn) const;
  /// The pfn of frame @id; view_error when there is no such frame.
  [[nodiscard]] pfn_t frame_pfn(std::uint64_t id) const;
  [[nodiscard]] std::uint64_t frames() const { return _pfn_of.size(); }
  [[nodiscard]] std::optional<std::uint64_t> swap_id(mm::swp_entry_t e) const;

  [[nodiscard]] std::uint64_t anon_vma_id(const mm::anon_vma* av) const;
  /// The anon_vmas alive, oldest first.
  [[nodiscard]] const std::vector<const mm::anon_vma*>& anon_vmas() const { return _anon_vmas; }
  [[nodiscard]] const mm::anon_vma* anon_vma_of(std::uint64_t id) const;

  /// The files, in order of first appearance.
  [[nodiscard]] const std::vector<const mm::address_space*>& files() const { return _files; }

  [[nodiscard]] std::uint64_t stable_node_id(const mm::ksm_stable_node* n) const;
  [[nodiscard]] const mm::machine::ksm_view& ksm() const { return _ksm; }

  /// The process an mm belongs to.
  [[nodiscard]] static const std::string& process(const mm::mm_struct* mm) { return mm->name; }

 private:
  void number_pages(const model::session& s, const pte_visitor& on_pte);
  void number_files(const model::session& s);
  void number_rest(const mm::machine& m);
  std::uint64_t note_frame(pfn_t pfn);
  void note_swap(mm::swp_entry_t e);
  void note_file(const mm::address_space* as);

  std::vector<vma_entry> _vmas;
  std::unordered_map<const mm::vm_area_struct*, std::size_t> _vma_index;
  std::vector<std::uint64_t> _id_of;  // by pfn: frame id, 0 for none
  std::vector<pfn_t> _pfn_of;         // by id - 1
  std::unordered_map<std::uint64_t, std::uint64_t> _swap_ids;
  std::vector<const mm::anon_vma*> _anon_vmas;
  std::unordered_map<const mm::anon_vma*, std::uint64_t> _anon_vma_ids;
  std::vector<const mm::address_space*> _files;
  mm::machine::ksm_view _ksm;
  std::unordered_map<const mm::ksm_stable_node*, std::uint64_t> _stable_ids;
};

/// snapshot() with names already made for the session's current state.
[[nodiscard]] state snapshot(const model::session& s, const names& n, const filter& f);

/// Names a design's objects TYPE#N in the order listed (each type counted apart), and
/// their links; @ids, when given, receives object -> id.
[[nodiscard]] std::vector<design_object_view> name_design_objects(
    const std::vector<mm::rmap_object_dump>& dumps, const names& n,
    std::unordered_map<const void*, std::string>* ids = nullptr);

}  // namespace rmapkit::view::detail
