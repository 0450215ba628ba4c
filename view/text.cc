// `rmapkit show`'s text: one object a line in the kernel's words, the objects it points
// at indented under it.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "rmapkit/view/state.h"

namespace rmapkit::view {

namespace {

using out_t = fmt::memory_buffer;

std::string av(std::uint64_t id) { return id ? fmt::format("av{}", id) : std::string("av?"); }

void header(out_t& out, const state& st) {
  auto it = std::back_inserter(out);
  if (st.position == 0) fmt::format_to(it, "# {}: before the first statement", st.file);
  else fmt::format_to(it, "# {}: after statement {} (line {}: {})", st.file, st.position, st.line, st.statement);
  fmt::format_to(it, "; design {}\n", st.design);
  std::vector<std::string> f;
  if (st.filter.pid) f.push_back("--pid " + *st.filter.pid);
  if (st.filter.frame) f.push_back(fmt::format("--frame {}", *st.filter.frame));
  if (st.filter.anon_vma) f.push_back(fmt::format("--anon-vma {}", *st.filter.anon_vma));
  if (st.filter.file) f.push_back("--file " + *st.filter.file);
  if (!f.empty()) fmt::format_to(it, "# only: {}\n", fmt::join(f, " "));
}

void mms(out_t& out, const state& st) {
  auto it = std::back_inserter(out);
  for (const auto& m : st.mms) {
    fmt::format_to(it, "mm {}\n", m.process);
    for (const auto& v : m.vmas) {
      fmt::format_to(it, "  {} {}[{}:{}] {:#x}-{:#x} {} vm_pgoff={:#x} vm_flags={}", v.id, v.region, v.first, v.end,
                     v.vm_start.value, v.vm_end.value, v.perms, v.vm_pgoff, fmt::join(v.vm_flags, ","));
      if (!v.file.empty()) fmt::format_to(it, " vm_file={}", v.file);
      if (v.anon_vma) fmt::format_to(it, " anon_vma={}", av(*v.anon_vma));
      fmt::format_to(it, "\n");
      if (!v.anon_vma_chain.empty()) {
        std::vector<std::string> chain;
        for (auto id : v.anon_vma_chain) chain.push_back(av(id));
        fmt::format_to(it, "    anon_vma_chain: {}\n", fmt::join(chain, " "));
      }
    }
  }
}

void anon_vmas(out_t& out, const state& st) {
  auto it = std::back_inserter(out);
  for (const auto& a : st.anon_vmas) {
    fmt::format_to(it, "anon_vma {} root={} parent={} refcount={} num_children={} num_active_vmas={}", av(a.id),
                   av(a.root), av(a.parent), a.refcount, a.num_children, a.num_active_vmas);
    if (a.ksm_refs) fmt::format_to(it, " ksm_refs={}", a.ksm_refs);
    fmt::format_to(it, "\n");
    for (const auto& c : a.rb_root) fmt::format_to(it, "  rb_root [{:#x}, {:#x}] -> {}\n", c.first, c.last, c.vma);
  }
}

void files(out_t& out, const state& st) {
  auto it = std::back_inserter(out);
  for (const auto& f : st.files) {
    fmt::format_to(it, "address_space {} {} pages={}\n", f.name,
                   f.anon_shared ? "shmem (MAP_SHARED|MAP_ANONYMOUS)" : (f.shmem ? "shmem" : "file"), f.pages);
    for (const auto& v : f.i_mmap) fmt::format_to(it, "  i_mmap [{:#x}, {:#x}] -> {}\n", v.first, v.last, v.vma);
    for (const auto& [index, frame] : f.i_pages) fmt::format_to(it, "  i_pages[{}] -> frame {}\n", index, frame);
    for (const auto& [index, swap] : f.swapped) fmt::format_to(it, "  swapped[{}] -> swap {}\n", index, swap);
  }
}

void ksm(out_t& out, const state& st) {
  if (st.ksm.empty()) return;
  auto it = std::back_inserter(out);
  fmt::format_to(it, "ksm mm_slots: {}\n", fmt::join(st.ksm.mm_slots, " "));
  for (const auto& n : st.ksm.stable) {
    // Frame 0: the KSM page is gone (a COW copied its last mapping); ksmd drops such a
    // stale node when its scan next visits it.
    if (n.frame) fmt::format_to(it, "  stable_node s{} kpfn=frame {}", n.id, n.frame);
    else fmt::format_to(it, "  stable_node s{} kpfn=stale (its KSM page was freed)", n.id);
    if (n.chain) fmt::format_to(it, " (dup in chain {})", n.chain);
    fmt::format_to(it, "\n");
    for (const auto& [proc, addr] : n.hlist) fmt::format_to(it, "    hlist: rmap_item {} {:#x}\n", proc, addr.value);
  }
  for (const auto& r : st.ksm.rmap_items) {
    fmt::format_to(it, "  rmap_item {} {:#x}", r.process, r.address.value);
    if (r.stable_node) fmt::format_to(it, " stable_node=s{}", *r.stable_node);
    else if (r.unstable) fmt::format_to(it, " unstable");
    if (r.anon_vma) fmt::format_to(it, " anon_vma={}", av(*r.anon_vma));
    fmt::format_to(it, "\n");
  }
  for (const auto& [proc, addr] : st.ksm.unstable) fmt::format_to(it, "  unstable tree: {} {:#x}\n", proc, addr.value);
}

void folios(out_t& out, const state& st) {
  auto it = std::back_inserter(out);
  for (const auto& f : st.folios) {
    fmt::format_to(it, "frame {} mapping={}", f.id, f.mapping);
    if (f.anon_vma) fmt::format_to(it, "({})", av(*f.anon_vma));
    else if (f.mapping == "anon" && st.design == "linux-6") fmt::format_to(it, "(anon_vma freed)");
    if (f.stable_node) fmt::format_to(it, "(s{})", *f.stable_node);
    if (!f.file.empty()) fmt::format_to(it, "({})", f.file);
    fmt::format_to(it, " index={:#x} mapcount={} refcount={} flags={}", f.index, f.mapcount, f.refcount,
                   f.flags.empty() ? std::string("-") : fmt::format("{}", fmt::join(f.flags, ",")));
    if (f.swap) fmt::format_to(it, " swap={}", *f.swap);
    if (!f.lru.empty()) fmt::format_to(it, " lru={}", f.lru);
    if (f.large)
      fmt::format_to(it, " folio={} order={} sub={}", f.large->head ? fmt::to_string(*f.large->head) : "-",
                     f.large->order, f.large->sub);
    fmt::format_to(it, "\n");
    for (const auto& p : f.mapped_by) {
      fmt::format_to(it, "  pte {} {}[{}] {:#x} {} {}", p.process, p.region, p.index, p.addr.value, p.vma,
                     p.write ? "rw" : "ro");
      if (p.young) fmt::format_to(it, " young");
      if (p.dirty) fmt::format_to(it, " dirty");
      fmt::format_to(it, "\n");
    }
  }
}

void design_objects(out_t& out, const state& st) {
  if (st.design_objects.empty()) return;
  auto it = std::back_inserter(out);
  fmt::format_to(it, "{} rmap:\n", st.design);
  for (const auto& o : st.design_objects) {
    fmt::format_to(it, "  {}", o.id);
    for (const auto& [k, v] : o.fields) fmt::format_to(it, " {}={}", k, v);
    for (const auto& [k, v] : o.links) fmt::format_to(it, " {}->{}", k, v);
    fmt::format_to(it, "\n");
  }
}

}  // namespace

std::string format_text(const state& st) {
  out_t out;
  header(out, st);
  mms(out, st);
  anon_vmas(out, st);
  files(out, st);
  ksm(out, st);
  folios(out, st);
  design_objects(out, st);
  return fmt::to_string(out);
}

}  // namespace rmapkit::view
