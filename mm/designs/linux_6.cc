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
  void walk(folio& f, const rmap_walk_control& rwc) override { _m.rmap_walk_anon(f, rwc); }
  [[nodiscard]] std::vector<rmap_object_count> objects() const override {
    return {_m._anon_vma_count.count(), _m._avc_count.count()};
  }

 private:
  machine& _m;
};

std::unique_ptr<anon_rmap> make_linux_6_anon_rmap(machine& m) { return std::make_unique<linux6_anon_rmap>(m); }

}  // namespace rmapkit::mm
