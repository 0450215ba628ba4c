// Linux 6's anonymous reverse map (mm/rmap.c, v6.18), the default design: anon_vma +
// anon_vma_chain + interval tree, fork-time reuse of an ancestor's anon_vma decided by
// num_children and num_active_vmas (2022, replacing 3.19's degree). It is the machine's
// own bookkeeping (rmap.cc), which every design keeps because it decides VMA merges: so
// this design adds nothing, walks with rmap_walk_anon() and reports the machine's
// anon_vma and AVC counts. It is the baseline the historical designs are compared with.
#include "support.h"

namespace rmapkit::mm {

// A friend of the machine (machine.h): it reads the machine's private rmap bookkeeping
// rather than widening the machine's public interface for one design.
class linux6_anon_rmap final : public anon_rmap {
 public:
  explicit linux6_anon_rmap(machine& m) : _m(m) {}
  [[nodiscard]] const char* name() const override { return "linux-6"; }
  // The root's rwsem, taken for writing where the machine's bookkeeping changed the chains:
  // anon_vma_prepare(), anon_vma_clone() (split, mremap, merge), anon_vma_fork() (once to
  // clone the parent's chain, once more to link the child's own anon_vma) and
  // unlink_anon_vmas() (once: every anon_vma of a chain has the same root).
  void prepare(vm_area_struct& vma) override { hold(vma); }
  void clone(vm_area_struct& dst, vm_area_struct& /*src*/) override { hold(dst); }
  void fork(vm_area_struct& child, vm_area_struct& parent) override {
    hold(child);
    if (child.anon_vma != parent.anon_vma && child.anon_vma->parent == parent.anon_vma) hold(child);
  }
  void unlink(vm_area_struct& vma) override {
    if (auto* avc = vma.anon_vma_chain.first()) {
      const rmap_lock lock(_m, rmap_lock_class::anon_vma_root_rwsem, avc->anon_vma->root);
    }
  }
  void walk(folio& f, const rmap_walk_control& rwc) override { _m.rmap_walk_anon(f, rwc); }
  [[nodiscard]] std::vector<rmap_object_count> objects() const override {
    return {_m._anon_vma_count.count(), _m._avc_count.count()};
  }

 private:
  void hold(const vm_area_struct& vma) {
    if (vma.anon_vma) {
      const rmap_lock lock(_m, rmap_lock_class::anon_vma_root_rwsem, vma.anon_vma->root);
    }
  }

  machine& _m;
};

std::unique_ptr<anon_rmap> make_linux_6_anon_rmap(machine& m) { return std::make_unique<linux6_anon_rmap>(m); }

}  // namespace rmapkit::mm
