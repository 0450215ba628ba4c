// Linux 2.6.34's anonymous reverse map (mm/rmap.c, v2.6.34), where anon_vma_chain was
// born: each VMA gets its own anon_vma at fork and an AVC for every ancestor's, so a page
// that a child wrote (and that only the child maps) is found through the child's anon_vma
// alone, not through the whole fork family as in 2.6.7 (linux_2_6_7.cc). The price is
// paid in objects: no reuse, so every fork of a VMA with anonymous pages allocates one
// anon_vma and one AVC per ancestor, and a process forking in a loop grows its chains
// without bound (what 3.19's degree rule fixed). An anon_vma's AVCs are a plain list (the
// interval tree came in 3.7): a walk visits every VMA that ever had the anon_vma on its
// chain, whether or not its range covers the page.
#include "avc.h"

namespace rmapkit::mm::designs {
namespace {

class linux_2_6_34_anon_rmap final : public avc_anon_rmap {
 public:
  // Kernel sizes: the anon_vma is a spinlock, a refcount and the list head (24 bytes:
  // the root pointer came in 2.6.35); the AVC two pointers and two list links (48).
  explicit linux_2_6_34_anon_rmap(machine& m) : avc_anon_rmap(m, fork_reuse::never, 24, 48) {}
  ~linux_2_6_34_anon_rmap() override { drop_all_chains(); }
  linux_2_6_34_anon_rmap(const linux_2_6_34_anon_rmap&) = delete;
  linux_2_6_34_anon_rmap& operator=(const linux_2_6_34_anon_rmap&) = delete;

  [[nodiscard]] const char* name() const override { return "linux-2.6.34"; }

  // rmap_walk_anon() / page_referenced_anon(): the whole list.
  void walk(folio& f, const rmap_walk_control& rwc) override {
    avc_era_anon_vma* av = folio_anon_vma(f);
    if (!av) return;
    rmap_trace(m(), [&] { return walk_step{.what = walk_step::kind::start, .name = "anon_vma", .object = av}; });
    const rmap_lock lock(m(), rmap_lock_class::anon_vma_lock, av, "page_lock_anon_vma");
    rmap_trace(m(), [&] {
      return walk_step{.what = walk_step::kind::query, .name = "anon_vma->head (every AVC)", .object = av};
    });
    bool go = true;
    av->head.for_each([&](avc_era_chain& avc) {
      if (!go) return;
      rmap_entry(m(), "anon_vma_chain", &avc, avc.vma);
      go = rmap_visit(m(), f, *avc.vma, rmap_candidates::may_miss_the_page, rwc);
    });
  }

 private:
  void index_insert(avc_era_chain& avc) override { avc.anon_vma->head.add_tail(avc.same_anon_vma); }
  void index_remove(avc_era_chain& avc) override { avc.same_anon_vma.del(); }
};

}  // namespace
}  // namespace rmapkit::mm::designs

namespace rmapkit::mm {
std::unique_ptr<anon_rmap> make_linux_2_6_34_anon_rmap(machine& m) {
  return std::make_unique<designs::linux_2_6_34_anon_rmap>(m);
}
}  // namespace rmapkit::mm
