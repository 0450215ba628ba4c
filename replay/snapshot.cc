// Kernel counterpart: what /proc/PID/maps, pagemap, kpageflags (KPF_ANON, KPF_KSM, PAGE_IS_
// EXCLUSIVE via PM_MMAP_EXCLUSIVE... the AnonExclusive bit) show of a tree; here read from
// the model, and compared with a trace's snapshot the way docs/rtrace.md says: frames by
// their sharing partition, never by number.
#include <algorithm>
#include <chrono>
#include <fstream>
#include <istream>
#include <map>
#include <ostream>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "replay_internal.h"
#include "rmapkit/mm/anon_rmap.h"
#include "rmapkit/replay/replay.h"

namespace rmapkit::replay {

namespace {

/// A PTE as pagemap and kpageflags show it: a swap entry, the zero page, or a frame.
snap_page page_of(const mm::machine& m, vaddr_t a, mm::pte_t pte) {
  snap_page pg{a, page_state::swap, 0, false};
  if (pte.is_swap()) {
    pg.frame = pte.swap_entry().val;
  } else if (pte.pfn() == m.zero_pfn()) {
    pg.state = page_state::zero;
  } else {
    const auto& f = m.folio_of(pte.pfn());
    pg.frame = f.pfn.value;
    pg.state = f.is_ksm() ? page_state::ksm : f.is_anon() ? page_state::anon : page_state::file;
    pg.exclusive = f.is_anon() && f.test(mm::folio_flag::anon_exclusive);
  }
  return pg;
}

}  // namespace

ev_snapshot snapshot_of(const mm::machine& m, const std::map<tid_t, const mm::mm_struct*>& tasks,
                        const std::unordered_map<const mm::address_space*, std::uint32_t>& file_ids,
                        std::string label) {
  ev_snapshot s{std::move(label), {}};
  std::set<const mm::mm_struct*> seen;
  for (const auto& [tid, mm] : tasks) {  // by tid: each mm under its lowest tid
    if (!seen.insert(mm).second) continue;
    snap_process p{tid, {}, {}};
    for (const auto& [start, v] : mm->mm_mt) {
      snap_vma sv{v->vm_start, v->vm_end, {}, false, {}, {}};
      sv.perms = {v->vm_flags.has(mm::vm_flag::read), v->vm_flags.has(mm::vm_flag::write),
                  v->vm_flags.has(mm::vm_flag::exec), v->vm_flags.has(mm::vm_flag::mayshare)};
      if (v->vm_file && v->vm_file->anon_shared) {
        sv.shmem = true;
      } else if (v->vm_file) {
        auto it = file_ids.find(v->vm_file);
        if (it == file_ids.end()) throw std::logic_error("a mapped file the trace never declared");
        sv.file = it->second;
        sv.pgoff = v->vm_pgoff;
      }
      p.vmas.push_back(sv);
      mm->pgd.for_each(v->vm_start, v->vm_end,
                       [&](vaddr_t a, mm::pte_t pte) { p.pages.push_back(page_of(m, a, pte)); });
    }
    s.processes.push_back(std::move(p));
  }
  return s;
}

ev_snapshot replayer::take(std::string label) const {
  std::map<tid_t, const mm::mm_struct*> tasks;
  for (const auto& [tid, t] : _tasks) tasks[tid] = t.mm;
  return snapshot_of(*_m, tasks, _file_ids, std::move(label));
}

namespace {

std::string describe(const snap_vma& v) {
  auto kind = v.file ? fmt::format("file {} {}", *v.file, v.pgoff.value) : std::string(v.shmem ? "shmem" : "anon");
  return fmt::format("{}-{} {} {}", v.start, v.end, to_string(v.perms), kind);
}

const char* exclusive(const snap_page& p) { return p.exclusive ? "AnonExclusive" : "not AnonExclusive"; }

/// Frames and swap entries live in different number spaces.
std::pair<bool, std::uint64_t> frame_key(const snap_page& p) { return {p.state == page_state::swap, p.frame}; }

class comparison {
 public:
  std::vector<difference> out;

  void process(const snap_process& want, const snap_process& got) {
    vmas(want, got);
    pages(want, got);
  }

  void note(std::string cause, std::string text) { out.push_back({std::move(cause), std::move(text)}); }

 private:
  // Which replayed frame each traced frame is, and back: a bijection when sharing agrees.
  std::map<std::pair<bool, std::uint64_t>, std::uint64_t> _want_to_got, _got_to_want;

  void vmas(const snap_process& want, const snap_process& got) {
    auto key = [](const snap_vma& v) { return std::pair{v.start.value, v.end.value}; };
    std::map<std::pair<std::uint64_t, std::uint64_t>, const snap_vma*> w, g;
    for (const auto& v : want.vmas) w[key(v)] = &v;
    for (const auto& v : got.vmas) g[key(v)] = &v;
    for (const auto& [k, v] : w) {
      auto it = g.find(k);
      if (it == g.end()) note("vma", fmt::format("task {}: vma {} in the trace only", want.tid, describe(*v)));
      else if (!(*it->second == *v))
        note("vma", fmt::format("task {}: vma {} in the trace, {} in the replay", want.tid, describe(*v),
                                describe(*it->second)));
    }
    for (const auto& [k, v] : g)
      if (!w.contains(k)) note("vma", fmt::format("task {}: vma {} in the replay only", want.tid, describe(*v)));
  }

  void pages(const snap_process& want, const snap_process& got) {
    std::map<std::uint64_t, const snap_page*> g;
    for (const auto& p : got.pages) g[p.addr.value] = &p;
    for (const auto& w : want.pages) {
      auto it = g.find(w.addr.value);
      if (it == g.end()) {
        note("page-missing", fmt::format("task {}: {} is {} in the trace, not mapped in the replay", want.tid, w.addr,
                                         to_string(w.state)));
        continue;
      }
      const snap_page& r = *it->second;
      g.erase(it);
      if (r.state != w.state) {
        note("page-state", fmt::format("task {}: {} is {} in the trace, {} in the replay", want.tid, w.addr,
                                       to_string(w.state), to_string(r.state)));
        continue;
      }
      if (r.exclusive != w.exclusive)
        note("anon-exclusive", fmt::format("task {}: {} is {} in the trace, {} in the replay", want.tid, w.addr,
                                           exclusive(w), exclusive(r)));
      if (w.state != page_state::zero) sharing(want.tid, w, r);
    }
    for (const auto& [a, r] : g)
      note("page-extra", fmt::format("task {}: {} is {} in the replay, not mapped in the trace", want.tid, r->addr,
                                     to_string(r->state)));
  }

  void sharing(tid_t tid, const snap_page& w, const snap_page& r) {
    auto wk = frame_key(w), rk = frame_key(r);
    auto [a, new_w] = _want_to_got.try_emplace(wk, r.frame);
    auto [b, new_r] = _got_to_want.try_emplace(rk, w.frame);
    if (a->second != r.frame || b->second != w.frame)
      note("sharing", fmt::format("task {}: {} shares its {} with other mappings in the trace than in the replay", tid,
                                  w.addr, w.state == page_state::swap ? "swap entry" : "frame"));
  }
};

}  // namespace

std::vector<difference> compare(const ev_snapshot& want, const ev_snapshot& got) {
  comparison c;
  std::map<tid_t, const snap_process*> g;
  for (const auto& p : got.processes) g[p.tid] = &p;
  for (const auto& w : want.processes) {
    auto it = g.find(w.tid);
    if (it == g.end()) {
      c.note("process", fmt::format("task {}: an address space in the trace, none in the replay", w.tid));
      continue;
    }
    c.process(w, *it->second);
    g.erase(it);
  }
  for (const auto& [tid, p] : g) c.note("process", fmt::format("task {}: an address space in the replay only", tid));
  return std::move(c.out);
}

namespace {

void print_counts(std::ostream& out, std::string_view title, const std::map<std::string, std::uint64_t>& m) {
  if (m.empty()) return;
  out << "  " << title << ':';
  for (const auto& [name, n] : m) out << fmt::format(" {} {}", name, n);
  out << '\n';
}

/// The kernel's anon_vma and AVC allocations beside the design's, when the trace has them.
void print_kmem(std::ostream& out, const replayer& r, const std::string& design) {
  const auto& k = r.stats().kernel_kmem;
  if (!k) return;
  const auto objs = r.machine().anon_rmap_design().objects();
  std::optional<std::uint64_t> av, avc;
  if (const auto* o = mm::find_object(objs, "anon_vma")) av = o->allocated;
  if (const auto* o = mm::find_object(objs, "anon_vma_chain")) avc = o->allocated;
  auto pct = [](std::uint64_t model, std::uint64_t kernel) {
    if (kernel == 0) return std::string(model == 0 ? "equal" : "the kernel none");
    return fmt::format(
        "{:+.1f} %", 100.0 * (static_cast<double>(model) - static_cast<double>(kernel)) / static_cast<double>(kernel));
  };
  out << fmt::format("kmem: the kernel allocated {} anon_vmas and {} anon_vma_chains", k->anon_vma_alloc, k->avc_alloc);
  if (av) out << fmt::format("; the model ({}) {} ({})", design, *av, pct(*av, k->anon_vma_alloc));
  if (av && avc) out << fmt::format(" and {} ({})", *avc, pct(*avc, k->avc_alloc));
  out << '\n';
}

void print_summary(std::ostream& out, const replayer& r, const std::string& design, std::uint64_t checked,
                   std::uint64_t differ) {
  const auto& s = r.stats();
  out << fmt::format("replayed {} events on the model ({})\n", s.events, design);
  print_counts(out, "applied", s.applied);
  print_counts(out, "refused", s.refused);
  print_counts(out, "unsupported", s.unsupported);
  for (const auto& why : s.first_refusals) out << "  " << why << '\n';
  if (s.lost) out << fmt::format("  the recorder lost {} events: the trace is incomplete\n", s.lost);
  const auto live = r.machine().live();
  out << fmt::format("live: {} mms, {} vmas, {} anon_vmas, {} avcs, {} folios\n", live.mms, live.vmas, live.anon_vmas,
                     live.avcs, live.folios);
  if (checked) out << fmt::format("snapshots: {} checked, {} differ\n", checked, differ);
  print_kmem(out, r, design);
}

}  // namespace

int replay_trace(std::istream& in, const std::string& name, const replay_run_options& opts, std::ostream& out,
                 std::ostream& err) {
  return replay_guarded(in, name, err, [&](reader& rd) {
    replayer r(opts.replay);
    std::uint64_t checked = 0, differ = 0;
    while (auto rec = rd.next()) {
      if (opts.until && rec->time > *opts.until) break;
      const auto* want = std::get_if<ev_snapshot>(&rec->ev);
      if (!want) {
        r.apply(*rec);
        continue;
      }
      r.check_invariants();
      if (!opts.check) continue;
      ++checked;
      auto diffs = compare(*want, r.take(want->label));
      if (diffs.empty()) continue;
      ++differ;
      out << fmt::format("{}: snapshot '{}' differs in {} place{}\n", rd.where(), want->label, diffs.size(),
                         diffs.size() == 1 ? "" : "s");
      std::map<std::string, std::uint64_t> by_cause;
      for (const auto& d : diffs) ++by_cause[d.cause];
      for (const auto& [cause, n] : by_cause) out << fmt::format("  {} {}\n", cause, n);
      for (std::size_t i = 0; i < diffs.size() && i < opts.max_differences; ++i)
        out << "  " << diffs[i].cause << ": " << diffs[i].text << '\n';
    }
    r.check_invariants();
    if (opts.print_state) {
      writer w(out, encoding::text, rd.head());
      w.write({0, r.take("end of replay")});
    }
    print_summary(out, r, opts.replay.design, checked, differ);
    return differ ? 1 : 0;
  });
}

bool is_trace_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string head(8, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  return in.gcount() == 8 && (head.starts_with("rtrace ") || head == std::string_view("\x7frtrace\n", 8));
}

std::vector<design_cost> compare_designs(const std::string& trace, const std::string& name,
                                         const std::vector<std::string>& designs) {
  std::vector<design_cost> out;
  for (const auto& d : designs) {
    std::istringstream in(trace);
    reader rd(in, name);
    replayer r({d, false});
    design_cost c;
    c.design = d;
    const auto t0 = std::chrono::steady_clock::now();
    while (auto rec = rd.next())
      if (!std::holds_alternative<ev_snapshot>(rec->ev)) r.apply(*rec);
    c.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    c.events = r.stats().events;
    c.objects = r.machine().anon_rmap_design().objects();
    c.per_frame_bytes = r.machine().anon_rmap_design().per_frame_bytes();
    c.walks = r.machine().stats();
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace rmapkit::replay
