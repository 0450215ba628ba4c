// Linux 3.19's anonymous reverse map (mm/rmap.c, v3.19): anon_vma + anon_vma_chain, each
// anon_vma's AVCs in an interval tree keyed by their VMAs' page offsets (since 3.7), so a
// walk visits only the VMAs whose range covers the page. New in 3.19: fork reuses an
// ancestor's anon_vma whose `degree` (VMAs using it + child anon_vmas) is below two, which
// stopped the anon_vma chains of a process that forks in a loop from growing without
// bound. Linux 6 replaced degree by num_children and num_active_vmas (the machine's own
// bookkeeping, linux_6.cc): `rmapkit compare` shows where the two rules differ.
#include "avc.h"

namespace rmapkit::mm::designs {
namespace {

class linux_3_19_anon_rmap final : public avc_anon_rmap {
 public:
  // Kernel sizes: the anon_vma is root, rwsem, refcount, degree, parent and rb_root (72
  // bytes); the AVC two pointers, two list links... and an rb node with the subtree end (64).
  explicit linux_3_19_anon_rmap(machine& m) : avc_anon_rmap(m, fork_reuse::idle_ancestor, 72, 64) {}
  ~linux_3_19_anon_rmap() override { drop_all_chains(); }
  linux_3_19_anon_rmap(const linux_3_19_anon_rmap&) = delete;
  linux_3_19_anon_rmap& operator=(const linux_3_19_anon_rmap&) = delete;

  [[nodiscard]] const char* name() const override { return "linux-3.19"; }

  // anon_vma_interval_tree_pre/post_update_vma(): the keys follow the VMA's range.
  void range_changed(vm_area_struct& vma, bool before) override {
    avc_era_vma* st = vma_state(vma);
    if (!st) return;
    st->chain.for_each([&](avc_era_chain& avc) {
      if (before) {
        avc.anon_vma->rb_root.remove(avc);
      } else {
        avc.start = vma.vm_pgoff.value;
        avc.last = vma.last_pgoff();
        avc.anon_vma->rb_root.insert(avc);
      }
    });
  }

  // rmap_walk_anon(): the tree query returns only AVCs whose VMA covers the page (of a
  // large folio, any of its pages: 3.19 had only PMD THPs, whose VMAs were split around
  // them, but the query on the folio's range is what a folio-era 3.19 would ask).
  void walk(folio& f, const rmap_walk_control& rwc) override {
    avc_era_anon_vma* av = folio_anon_vma(f);
    if (!av) return;
    const auto pgoff = f.index.value, last = pgoff + f.nr_pages() - 1;
    rmap_trace(m(), [&] { return walk_step{.what = walk_step::kind::start, .name = "anon_vma", .object = av}; });
    const rmap_lock lock(m(), rmap_lock_class::anon_vma_root_rwsem, av->root, "anon_vma_lock_read");
    rmap_trace(m(), [&] {
      return walk_step{
          .what = walk_step::kind::query, .name = "anon_vma->rb_root", .object = av, .first = pgoff, .last = last};
    });
    for (auto* avc = av->rb_root.iter_first(pgoff, last); avc; avc = av->rb_root.iter_next(*avc, pgoff, last)) {
      rmap_entry(m(), "anon_vma_chain", avc, avc->vma);
      if (!rmap_visit(m(), f, *avc->vma, rmap_candidates::cover_the_page, rwc)) return;
    }
  }

 private:
  void index_insert(avc_era_chain& avc) override { avc.anon_vma->rb_root.insert(avc); }
  void index_remove(avc_era_chain& avc) override { avc.anon_vma->rb_root.remove(avc); }
};

}  // namespace
}  // namespace rmapkit::mm::designs

namespace rmapkit::mm {
std::unique_ptr<anon_rmap> make_linux_3_19_anon_rmap(machine& m) {
  return std::make_unique<designs::linux_3_19_anon_rmap>(m);
}
}  // namespace rmapkit::mm
