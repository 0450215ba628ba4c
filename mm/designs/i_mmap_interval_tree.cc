// The file reverse map of Linux 3.7 on (mm/interval_tree.c, v6.18), the default file
// design: address_space->i_mmap as an augmented red-black interval tree over each VMA's
// [vm_pgoff, last], its node (shared.rb + rb_subtree_last) inside the VMA. It is the
// machine's own i_mmap, which every design keeps: so this design adds nothing, walks
// with rmap_walk_file() (rmap.cc) and counts the nodes i_mmap holds.
#include "support.h"

namespace rmapkit::mm {

// A friend of the machine (machine.h), for its rmap_walk_file().
class interval_tree_file_rmap final : public file_rmap {
 public:
  explicit interval_tree_file_rmap(machine& m) : _m(m) {}
  [[nodiscard]] const char* name() const override { return "interval-tree"; }
  void link(vm_area_struct& vma) override {
    _nodes.alloc();
    descent(vma);
  }
  void unlink(vm_area_struct& vma) override {
    _nodes.free();
    descent(vma);
  }
  void range_changed(vm_area_struct& vma, bool /*before*/) override { descent(vma); }
  void walk(folio& f, const rmap_walk_control& rwc) override { _m.rmap_walk_file(f, rwc); }
  [[nodiscard]] std::vector<rmap_object_count> objects() const override { return {_nodes.count()}; }

 private:
  /// Upkeep: an insertion or removal compares keys along the VMA's path from the root (the
  /// rebalancing after it is not counted). Called while the VMA is in i_mmap.
  void descent(const vm_area_struct& vma) {
    const rmap_lock lock(_m, rmap_lock_class::i_mmap_rwsem, vma.vm_file);  // i_mmap_lock_write()
    for (const interval_tree_node* n = &vma.shared_rb; n; n = n->parent) _m.stats().upkeep++;
  }

  machine& _m;
  // struct vm_area_struct's shared: an rb_node (24 B) and rb_subtree_last (8 B).
  object_counter _nodes{"vm_area_struct.shared (rb_node)", 32};
};

std::unique_ptr<file_rmap> make_interval_tree_file_rmap(machine& m) {
  return std::make_unique<interval_tree_file_rmap>(m);
}

}  // namespace rmapkit::mm
