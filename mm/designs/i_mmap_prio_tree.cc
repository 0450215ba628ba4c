// The file reverse map of Linux 2.6.7 to 3.6 (Rajesh Venkatasubramanian's "radix priority
// search tree", 2004): address_space->i_mmap as a priority search tree over each VMA's
// [vm_pgoff, last] (include/rmapkit/prio_tree.h), its node inside the VMA (the shared
// union: prio_tree_node, or vm_set for a VMA whose range equals one already in the tree,
// which hangs off that node in a list). A walk reads the tree nodes on the paths that can
// hold the page's offset and the VMAs that map it: O(depth + k) where the 2.6.6 lists
// (i_mmap_list.cc) read every VMA of the file. Linking and unlinking walk one path.
#include <algorithm>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "rmapkit/prio_tree.h"
#include "support.h"

namespace rmapkit::mm::designs {
namespace {

using vma_prio_tree = prio_tree<vm_area_struct>;
using vma_prio_node = prio_tree_node<vm_area_struct>;

/// Counts the nodes linking and unlinking look at (walk_stats::upkeep).
struct upkeep_counter {
  machine* m;
  void operator()(const vma_prio_node& /*n*/) const { m->stats().upkeep++; }
};

class prio_tree_file_rmap final : public file_rmap {
 public:
  explicit prio_tree_file_rmap(machine& m) : _m(m) {}
  prio_tree_file_rmap(const prio_tree_file_rmap&) = delete;
  prio_tree_file_rmap& operator=(const prio_tree_file_rmap&) = delete;

  [[nodiscard]] const char* name() const override { return "prio-tree"; }

  // vma_prio_tree_insert()
  void link(vm_area_struct& vma) override {
    const rmap_lock lock(_m, rmap_lock_class::i_mmap_lock, vma.vm_file);
    auto& n = node_of(vma);
    _tree[vma.vm_file].insert(n, upkeep());
  }
  // vma_prio_tree_add(): fork's copy joins its parent's list, right after it.
  void link_after(vm_area_struct& vma, vm_area_struct& parent) override {
    auto it = _nodes.find(&parent);
    if (it == _nodes.end() || !it->second.linked) return link(vma);
    const rmap_lock lock(_m, rmap_lock_class::i_mmap_lock, vma.vm_file);
    auto& n = node_of(vma);
    _tree[vma.vm_file].insert_after(n, it->second, upkeep());
  }
  // vma_prio_tree_remove()
  void unlink(vm_area_struct& vma) override {
    auto it = _nodes.find(&vma);
    if (it == _nodes.end()) return;
    const rmap_lock lock(_m, rmap_lock_class::i_mmap_lock, vma.vm_file);
    auto t = _tree.find(vma.vm_file);
    t->second.remove(it->second, upkeep());
    _nodes.erase(it);
    _objects.free();
    if (t->second.empty()) _tree.erase(t);  // the file may go with its last VMA
  }
  // The tree is keyed by the range: out before it changes, in again after.
  void range_changed(vm_area_struct& vma, bool before) override {
    auto it = _nodes.find(&vma);
    if (it == _nodes.end()) return;
    const rmap_lock lock(_m, rmap_lock_class::i_mmap_lock, vma.vm_file);
    auto& t = _tree[vma.vm_file];
    if (before) {
      t.remove(it->second, upkeep());
      return;
    }
    it->second.start = vma.vm_pgoff.value;
    it->second.last = vma.last_pgoff();
    t.insert(it->second, upkeep());
  }

  // page_referenced_file() / try_to_unmap_file(): vma_prio_tree_foreach() on the page.
  void walk(folio& f, const rmap_walk_control& rwc) override {
    address_space* as = f.file();
    if (!as) return;
    auto t = _tree.find(as);
    if (t == _tree.end()) return;
    // A large folio: every VMA that maps any of its pages.
    const auto pgoff = f.index.value, last = pgoff + f.nr_pages() - 1;
    rmap_trace(_m, [&] { return walk_step{.what = walk_step::kind::start, .name = "address_space", .object = as}; });
    const rmap_lock lock(_m, rmap_lock_class::i_mmap_lock, as, "i_mmap_lock");
    rmap_trace(_m, [&] {
      return walk_step{
          .what = walk_step::kind::query, .name = "i_mmap (prio tree)", .object = as, .first = pgoff, .last = last};
    });
    auto seen = [&](const vma_prio_node& n) {
      rmap_entry(_m, n.in_list() ? "vm_area_struct->shared.vm_set" : "vm_area_struct->shared.prio_tree_node", &n,
                 n.item);
    };
    t->second.for_each_overlap(
        pgoff, last, [&](vm_area_struct& vma) { return rmap_visit(_m, f, vma, rmap_candidates::cover_the_page, rwc); },
        seen);
  }

  [[nodiscard]] std::vector<rmap_object_count> objects() const override { return {_objects.count()}; }

  // Each file's tree, node by node (depth first), with the VMAs of equal range on its list.
  [[nodiscard]] std::vector<rmap_object_dump> dump(const folio* only) const override {
    std::vector<rmap_object_dump> out;
    for (const auto& [as, tree] : in_order()) {
      if (only && only->file() != as) continue;
      rmap_object_dump root{.key = tree,
                            .type = "prio_tree_root",
                            .fields = {{"file", as->name}, {"index_bits", std::to_string(tree->bits())}},
                            .links = {}};
      if (tree->root()) root.links.push_back({.field = "prio_tree_node", .object = tree->root()});
      out.push_back(std::move(root));
      tree->for_each_node([&](const vma_prio_node& n, unsigned depth) {
        rmap_object_dump d{.key = &n,
                           .type = "prio_tree_node",
                           .fields = {{"radix_index", std::to_string(n.start)},
                                      {"heap_index", std::to_string(n.last)},
                                      {"depth", std::to_string(depth)}},
                           .links = {{.field = "vma", .vma = n.item}}};
        if (n.left) d.links.push_back({.field = "left", .object = n.left});
        if (n.right) d.links.push_back({.field = "right", .object = n.right});
        for (const auto* e = n.next; e; e = e->next) d.links.push_back({.field = "vm_set", .vma = e->item});
        out.push_back(std::move(d));
      });
    }
    return out;
  }

  // Each tree's own shape, and each node's range the VMA's.
  [[nodiscard]] std::string check() const override {
    std::size_t linked = 0;
    for (const auto& [as, tree] : _tree) {
      if (auto e = tree.verify(); !e.empty()) return "prio tree of " + as->name + ": " + e;
      linked += tree.size();
    }
    for (const auto& [vma, n] : _nodes)
      if (n.start != vma->vm_pgoff.value || n.last != vma->last_pgoff())
        return "prio tree: a node's range is not its VMA's";
    if (linked != _nodes.size())
      return "prio tree: " + std::to_string(_nodes.size()) + " VMAs linked, " + std::to_string(linked) + " in trees";
    return {};
  }

 private:
  vma_prio_node& node_of(vm_area_struct& vma) {
    auto& n = _nodes[&vma];
    n.item = &vma;
    n.start = vma.vm_pgoff.value;
    n.last = vma.last_pgoff();
    _objects.alloc();
    return n;
  }
  [[nodiscard]] upkeep_counter upkeep() const { return {&_m}; }
  /// The trees by file name, then by their root's VMA (mm, address): a dump's order.
  [[nodiscard]] std::vector<std::pair<const address_space*, const vma_prio_tree*>> in_order() const {
    std::vector<std::pair<const address_space*, const vma_prio_tree*>> v;
    for (const auto& [as, tree] : _tree) v.emplace_back(as, &tree);
    auto key = [](const auto& e) {
      const vm_area_struct* r = e.second->root() ? e.second->root()->item : nullptr;
      return std::tuple{e.first->name, r ? r->vm_mm->id : 0, r ? r->vm_start.value : 0};
    };
    std::sort(v.begin(), v.end(), [&](const auto& x, const auto& y) { return key(x) < key(y); });
    return v;
  }

  machine& _m;
  std::unordered_map<const vm_area_struct*, vma_prio_node> _nodes;  // each linked VMA's node
  std::unordered_map<const address_space*, vma_prio_tree> _tree;    // i_mmap
  // 2.6.7's vm_area_struct.shared: the larger of vm_set (list_head, parent, head) and
  // prio_tree_node (left, right, parent): 32 bytes.
  object_counter _objects{"vm_area_struct.shared (prio_tree_node)", 32};
};

}  // namespace
}  // namespace rmapkit::mm::designs

namespace rmapkit::mm {
std::unique_ptr<file_rmap> make_prio_tree_file_rmap(machine& m) {
  return std::make_unique<designs::prio_tree_file_rmap>(m);
}
}  // namespace rmapkit::mm
