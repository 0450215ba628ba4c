// The file reverse map of Linux 2.5 to 2.6.6 (objrmap, Dave McCracken): an address_space
// kept two plain lists of the VMAs mapping it, i_mmap for private mappings and
// i_mmap_shared for shared ones, each VMA on one by a list_head inside it (vma->shared).
// Linking and unlinking cost nothing; a walk reads every VMA of the file, on both lists,
// and skips after vma_address() those whose range misses the page. A file mapped by many
// processes in small windows made every walk read them all: the "objrmap complexity"
// that the 2.6.7 prio tree (i_mmap_prio_tree.cc) fixed.
#include <algorithm>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "support.h"

namespace rmapkit::mm::designs {
namespace {

struct file_member;

/// 2.6.6's i_mmap and i_mmap_shared of one address_space.
struct file_lists {
  list_head<file_member> i_mmap;         ///< private mappings
  list_head<file_member> i_mmap_shared;  ///< shared mappings
};

/// What 2.6.6 kept in struct vm_area_struct: its place on one of its file's lists.
struct file_member {
  vm_area_struct* vma = nullptr;
  list_head<file_member> shared{this};
};

class list_file_rmap final : public file_rmap {
 public:
  explicit list_file_rmap(machine& m) : _m(m) {}
  ~list_file_rmap() override {
    for (auto& [vma, member] : _members) member.shared.del();
  }
  list_file_rmap(const list_file_rmap&) = delete;
  list_file_rmap& operator=(const list_file_rmap&) = delete;

  [[nodiscard]] const char* name() const override { return "list"; }

  // __vma_link_file(): at the tail of the list its sharing chooses.
  void link(vm_area_struct& vma) override {
    auto& member = join(vma);
    list_of(vma).add_tail(member.shared);
  }
  // dup_mmap(): the child's copy right after its parent, so a walk sees the parent first.
  void link_after(vm_area_struct& vma, vm_area_struct& parent) override {
    auto it = _members.find(&parent);
    if (it == _members.end()) return link(vma);
    it->second.shared.add(join(vma).shared);
  }
  void unlink(vm_area_struct& vma) override {
    auto it = _members.find(&vma);
    if (it == _members.end()) return;
    const rmap_lock lock(_m, rmap_lock_class::i_mmap_lock, vma.vm_file);
    it->second.shared.del();
    _members.erase(it);
    _nodes.free();
    _m.stats().upkeep++;  // one list_head unlinked
    // The file may go with its last VMA: its lists must not outlive it.
    if (auto l = _lists.find(vma.vm_file);
        l != _lists.end() && l->second.i_mmap.empty() && l->second.i_mmap_shared.empty())
      _lists.erase(l);
  }
  // The lists are not ordered by offset: a VMA whose range changes stays where it is.
  void range_changed(vm_area_struct& /*vma*/, bool /*before*/) override {}

  // page_referenced_file() / try_to_unmap_file(): both lists, whole.
  void walk(folio& f, const rmap_walk_control& rwc) override {
    address_space* as = f.file();
    if (!as) return;
    auto it = _lists.find(as);
    if (it == _lists.end()) return;
    rmap_trace(_m, [&] { return walk_step{.what = walk_step::kind::start, .name = "address_space", .object = as}; });
    const rmap_lock lock(_m, rmap_lock_class::i_mmap_lock, as, "i_mmap_lock");
    for (auto* list : {&it->second.i_mmap, &it->second.i_mmap_shared}) {
      const char* name = list == &it->second.i_mmap ? "i_mmap (every private VMA of the file)"
                                                    : "i_mmap_shared (every shared VMA of the file)";
      rmap_trace(_m, [&] { return walk_step{.what = walk_step::kind::query, .name = name, .object = list}; });
      bool go = true;
      list->for_each([&](file_member& member) {
        if (!go) return;
        rmap_entry(_m, "vm_area_struct->shared", &member, member.vma);
        go = rmap_visit(_m, f, *member.vma, rmap_candidates::may_miss_the_page, rwc);
      });
      if (!go) return;
    }
  }

  [[nodiscard]] std::vector<rmap_object_count> objects() const override { return {_nodes.count()}; }

  // Each file's two lists, in list order.
  [[nodiscard]] std::vector<rmap_object_dump> dump(const folio* only) const override {
    std::vector<rmap_object_dump> out;
    for (const auto& [as, l] : by_name()) {
      const file_lists& lists = *l;
      if (only && only->file() != as) continue;
      if (lists.i_mmap.empty() && lists.i_mmap_shared.empty()) continue;
      rmap_object_dump d{.key = &lists, .type = "address_space", .fields = {{"file", as->name}}, .links = {}};
      lists.i_mmap.for_each([&](const file_member& m) { d.links.push_back({.field = "i_mmap", .vma = m.vma}); });
      lists.i_mmap_shared.for_each(
          [&](const file_member& m) { d.links.push_back({.field = "i_mmap_shared", .vma = m.vma}); });
      out.push_back(std::move(d));
    }
    return out;
  }

  // Every member on its file's list of the right kind, and every list entry a member.
  [[nodiscard]] std::string check() const override {
    std::size_t on_lists = 0;
    for (const auto& entry : _lists) {
      const address_space* as = entry.first;  // not a structured binding: the lambda below reads it
      const file_lists& lists = entry.second;
      std::string bad;
      auto count = [&](const list_head<file_member>& l, bool shared) {
        l.for_each([&](const file_member& m) {
          ++on_lists;
          if (m.vma->vm_file != as || m.vma->vm_flags.has(vm_flag::shared) != shared)
            bad = "list file rmap: a VMA on the wrong list of " + as->name;
        });
      };
      count(lists.i_mmap, false);
      count(lists.i_mmap_shared, true);
      if (!bad.empty()) return bad;
    }
    if (on_lists != _members.size())
      return "list file rmap: " + std::to_string(_members.size()) + " VMAs linked, " + std::to_string(on_lists) +
             " on the lists";
    return {};
  }

 private:
  /// The files' lists in a run-independent order: by file name, then by the first VMA
  /// (mm, address) on them (shared anonymous objects all have one name).
  [[nodiscard]] std::vector<std::pair<const address_space*, const file_lists*>> by_name() const {
    std::vector<std::pair<const address_space*, const file_lists*>> v;
    for (const auto& [as, lists] : _lists) v.emplace_back(as, &lists);
    auto key = [](const auto& e) {
      const file_member* m = e.second->i_mmap.empty() ? e.second->i_mmap_shared.first() : e.second->i_mmap.first();
      return std::tuple{e.first->name, m ? m->vma->vm_mm->id : 0, m ? m->vma->vm_start.value : 0};
    };
    std::sort(v.begin(), v.end(), [&](const auto& x, const auto& y) { return key(x) < key(y); });
    return v;
  }

  file_member& join(vm_area_struct& vma) {
    const rmap_lock lock(_m, rmap_lock_class::i_mmap_lock, vma.vm_file);
    auto& member = _members[&vma];
    member.vma = &vma;
    _nodes.alloc();
    _m.stats().upkeep++;  // one list_head written
    return member;
  }
  list_head<file_member>& list_of(const vm_area_struct& vma) {
    auto& lists = _lists[vma.vm_file];
    return vma.vm_flags.has(vm_flag::shared) ? lists.i_mmap_shared : lists.i_mmap;
  }

  machine& _m;
  std::unordered_map<const vm_area_struct*, file_member> _members;
  std::unordered_map<const address_space*, file_lists> _lists;
  object_counter _nodes{"vm_area_struct.shared (list_head)", 16};
};

}  // namespace
}  // namespace rmapkit::mm::designs

namespace rmapkit::mm {
std::unique_ptr<file_rmap> make_list_file_rmap(machine& m) { return std::make_unique<designs::list_file_rmap>(m); }
}  // namespace rmapkit::mm
