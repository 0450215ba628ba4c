// The anon_vma + anon_vma_chain machinery that Linux 2.6.34 introduced and 3.19 kept:
// each VMA has a chain of AVCs, one per anon_vma it may find its pages in (its own and
// every ancestor's), and each anon_vma knows its AVCs, so a walk from a page's anon_vma
// reaches every VMA that may map it. It replaced 2.6.7's one list per fork family
// (linux_2_6_7.cc), whose walks visit the whole family. The two eras differ in how an
// anon_vma indexes its AVCs (2.6.34: a list; 3.19: an interval tree on the VMAs' page
// offsets) and in fork (3.19 reuses an idle ancestor's anon_vma: the `degree` rule);
// linux_2_6_34.cc and linux_3_19.cc hold those differences, this base everything else.
// The machine's own linux-6 bookkeeping (rmap.cc) is the same machinery grown further:
// num_children and num_active_vmas instead of degree.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "support.h"

namespace rmapkit::mm::designs {

struct avc_era_anon_vma;

/// struct anon_vma_chain of 2.6.34 and 3.19: links one VMA and one anon_vma.
struct avc_era_chain {
  vm_area_struct* vma = nullptr;
  avc_era_anon_vma* anon_vma = nullptr;
  list_head<avc_era_chain> same_vma{this};       ///< on the VMA's chain
  list_head<avc_era_chain> same_anon_vma{this};  ///< linux-2.6.34: on the anon_vma's list
  interval_tree_node rb;                         ///< linux-3.19: in the anon_vma's tree
  std::uint64_t start = 0, last = 0;             ///< the VMA's pgoff range when inserted (3.19's key)
};

/// The interval key of an AVC in 3.19's tree.
struct avc_era_chain_interval {
  static std::uint64_t start(const avc_era_chain& avc) { return avc.start; }
  static std::uint64_t last(const avc_era_chain& avc) { return avc.last; }
};

using avc_era_tree = interval_tree<avc_era_chain, &avc_era_chain::rb, avc_era_chain_interval>;

/// struct anon_vma of 2.6.34 and 3.19. Each era indexes its AVCs with one of the two
/// heads; the other stays empty.
struct avc_era_anon_vma {
  avc_era_anon_vma* root = this;
  avc_era_anon_vma* parent = this;
  int refcount = 1;               ///< existence (dropped when its last AVC goes) + one per child on the root
  unsigned degree = 1;            ///< VMAs using it + child anon_vmas (+1 self-parent on a root): 3.19's fork reads it
  std::size_t avcs = 0;           ///< AVCs on it
  list_head<avc_era_chain> head;  ///< linux-2.6.34: its AVCs, oldest first
  avc_era_tree rb_root;           ///< linux-3.19: its AVCs by their VMAs' pgoff ranges
  std::uint64_t serial = 0;       ///< allocation order, so that a dump lists anon_vmas oldest first
};

/// What these eras kept in struct vm_area_struct: its anon_vma and its AVC chain.
struct avc_era_vma {
  avc_era_anon_vma* anon_vma = nullptr;
  list_head<avc_era_chain> chain;  ///< newest first, root last
};

/// The anon_vma + AVC design minus what its eras do differently: how an anon_vma
/// indexes its AVCs (index_insert/index_remove, walk), and whether fork may reuse an
/// ancestor's anon_vma.
class avc_anon_rmap : public anon_rmap {
 public:
  avc_anon_rmap(const avc_anon_rmap&) = delete;
  avc_anon_rmap& operator=(const avc_anon_rmap&) = delete;

  void prepare(vm_area_struct& vma) override;
  void clone(vm_area_struct& dst, vm_area_struct& src) override;
  void fork(vm_area_struct& child, vm_area_struct& parent) override;
  void unlink(vm_area_struct& vma) override;
  void add_new(folio& f, vm_area_struct& vma, vaddr_t addr, bool exclusive) override;
  void move(folio& f, vm_area_struct& vma) override;
  void migrate(folio& src, folio& dst) override;
  void split(const folio& head, folio& page) override;
  [[nodiscard]] std::vector<rmap_object_count> objects() const override;
  [[nodiscard]] std::string check() const override;
  [[nodiscard]] std::vector<rmap_object_dump> dump(const folio* only) const override;

 protected:
  enum class fork_reuse : bool { never, idle_ancestor };
  /// @anon_vma_bytes and @avc_bytes: the era's kernel object sizes, for `compare`.
  avc_anon_rmap(machine& m, fork_reuse reuse, std::size_t anon_vma_bytes, std::size_t avc_bytes);
  /// Tears every chain down; each era's destructor calls it, while its index is alive.
  void drop_all_chains();

  /// The era's anon_vma index: @avc joins or leaves its anon_vma's.
  virtual void index_insert(avc_era_chain& avc) = 0;
  virtual void index_remove(avc_era_chain& avc) = 0;

  /// The anon_vma a folio's page->mapping points to, or null.
  avc_era_anon_vma* folio_anon_vma(const folio& f) { return _mapping[f.pfn]; }
  /// @vma's chain, or null when it has none.
  avc_era_vma* vma_state(const vm_area_struct& vma);
  machine& m() { return _m; }

 private:
  avc_era_anon_vma* alloc_anon_vma();
  void put_anon_vma(avc_era_anon_vma* av);
  void free_anon_vma(avc_era_anon_vma* av);
  void link(vm_area_struct& vma, avc_era_vma& st, avc_era_anon_vma* av);
  void copy_chain(vm_area_struct& dst, avc_era_vma& d, avc_era_vma& s, bool reuse);
  void drop_chain(avc_era_vma& st);
  /// The locks an era takes to change chains: 3.19 (like 6.x) the root's rwsem, once for a
  /// batch (lock_anon_vma_root()); 2.6.34 each anon_vma's own spinlock, for each AVC.
  [[nodiscard]] std::optional<rmap_lock> root_lock(const avc_era_anon_vma* av);
  [[nodiscard]] std::optional<rmap_lock> own_lock(const avc_era_anon_vma* av);

  machine& _m;
  fork_reuse _reuse;
  slab_cache<avc_era_anon_vma> _anon_vma_slab;
  slab_cache<avc_era_chain> _chain_slab;
  std::unordered_map<const vm_area_struct*, avc_era_vma> _vma_state;
  pfn_table<avc_era_anon_vma*> _mapping;  // folio->mapping
  object_counter _anon_vma_objects;
  object_counter _avc_objects;
  std::uint64_t _serial = 0;
};

}  // namespace rmapkit::mm::designs
