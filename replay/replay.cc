// Kernel counterpart: the system calls and faults a trace records (mm/mmap.c, mm/memory.c,
// kernel/fork.c, fs/exec.c), replayed on the model. The rules that map tasks to mms are
// the kernel's: fork copies the mm, CLONE_VM shares it, exec gives the task a new one, and
// an mm goes when its last task does.
#include "rmapkit/replay/replay.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <istream>
#include <ostream>

#include <fmt/format.h>

#include "rmapkit/mm/content.h"

namespace rmapkit::replay {

namespace {

int prot_of(const perms& p) {
  return (p.read ? mm::PROT_READ_ : 0) | (p.write ? mm::PROT_WRITE_ : 0) | (p.exec ? mm::PROT_EXEC_ : 0);
}

/// The advice the model carries out, by the name the trace gives (MADV_ without the prefix).
std::optional<mm::madv> madv_of(std::string_view name) {
  static constexpr std::pair<std::string_view, mm::madv> table[] = {{"dontneed", mm::madv::dontneed},
                                                                    {"mergeable", mm::madv::mergeable},
                                                                    {"unmergeable", mm::madv::unmergeable},
                                                                    {"pageout", mm::madv::pageout},
                                                                    {"dontfork", mm::madv::dontfork},
                                                                    {"dofork", mm::madv::dofork},
                                                                    {"wipeonfork", mm::madv::wipeonfork},
                                                                    {"keeponfork", mm::madv::keeponfork},
                                                                    {"dontdump", mm::madv::dontdump},
                                                                    {"dodump", mm::madv::dodump},
                                                                    {"sequential", mm::madv::sequential},
                                                                    {"random", mm::madv::random},
                                                                    {"normal", mm::madv::normal},
                                                                    {"free", mm::madv::free},
                                                                    {"cold", mm::madv::cold},
                                                                    {"willneed", mm::madv::willneed},
                                                                    {"remove", mm::madv::remove},
                                                                    {"hugepage", mm::madv::hugepage},
                                                                    {"nohugepage", mm::madv::nohugepage}};
  for (const auto& [n, a] : table)
    if (n == name) return a;
  return std::nullopt;
}

vaddr_t page_up(vaddr_t a) { return vaddr_t{(a.value + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)}; }

}  // namespace

replayer::replayer(replay_options opts) : _opts(std::move(opts)), _m(std::make_unique<mm::machine>(_opts.design)) {}

replayer::~replayer() {
  // Exit every mm still alive once, then close the files: the machine is torn down clean.
  std::vector<tid_t> tids;
  for (const auto& [tid, t] : _tasks) tids.push_back(tid);
  for (auto tid : tids) drop_task(tid);
  for (auto& [id, f] : _files) _m->file_put(f);
  _m->ksm_drop_exited();
}

mm::mm_struct& replayer::mm_of(tid_t tid, std::string_view what) {
  auto it = _tasks.find(tid);
  if (it == _tasks.end()) throw replay_error(fmt::format("{}: task {} does not exist", what, tid));
  return *it->second.mm;
}

void replayer::drop_task(tid_t tid) {
  auto it = _tasks.find(tid);
  if (it == _tasks.end()) return;
  mm::mm_struct* mm = it->second.mm;
  _tasks.erase(it);
  if (--_users[mm] == 0) {
    _users.erase(mm);
    _m->exit_mm(mm);
  }
}

void replayer::count(std::string_view name, int result, std::string_view what) {
  if (result >= 0) {
    ++_stats.applied[std::string(name)];
    return;
  }
  ++_stats.refused[std::string(name)];
  if (_stats.first_refusals.size() < 10)
    _stats.first_refusals.push_back(fmt::format("{}: refused: {}", what, std::strerror(-result)));
}

void replayer::unsupported(std::string what) { ++_stats.unsupported[std::move(what)]; }

void replayer::apply(const record& r) {
  ++_stats.events;
  // As the kernel runner does before each statement: pages faulted in a row stay in the
  // per-CPU batch until something else happens.
  if (!std::holds_alternative<ev_fault>(r.ev)) _m->lru_add_drain();
  std::visit([&](const auto& e) { on(e); }, r.ev);
  if (_opts.check_invariants)
    if (auto bad = _m->check_invariants(); !bad.empty())
      throw std::logic_error(fmt::format("model invariant broken after '{}': {}", event_name(r.ev), bad));
}

void replayer::check_invariants() const {
  if (auto bad = _m->check_invariants(); !bad.empty()) throw std::logic_error("model invariant broken: " + bad);
}

void replayer::on(const ev_file& e) {
  if (_files.contains(e.id)) throw replay_error(fmt::format("file {} is declared twice", e.id));
  auto* f = _m->memfd_create(e.name, e.pages, mm::content::file_key(e.id));
  _files[e.id] = f;
  _file_ids[f] = e.id;
  ++_stats.applied["file"];
}

void replayer::on(const ev_exec& e) {
  drop_task(e.tid);
  auto* mm = _m->mm_alloc(fmt::format("{}", e.tid));
  _tasks[e.tid] = {mm};
  ++_users[mm];
  ++_stats.applied["exec"];
}

void replayer::on(const ev_fork& e) {
  if (_tasks.contains(e.child)) throw replay_error(fmt::format("fork: task {} exists already", e.child));
  auto* mm = _m->dup_mm(mm_of(e.parent, "fork"), fmt::format("{}", e.child));
  _tasks[e.child] = {mm};
  ++_users[mm];
  ++_stats.applied["fork"];
}

void replayer::on(const ev_clone_vm& e) {
  if (_tasks.contains(e.child)) throw replay_error(fmt::format("clone-vm: task {} exists already", e.child));
  auto* mm = &mm_of(e.parent, "clone-vm");
  _tasks[e.child] = {mm};
  ++_users[mm];
  ++_stats.applied["clone-vm"];
}

void replayer::on(const ev_exit& e) {
  if (!_tasks.contains(e.tid)) throw replay_error(fmt::format("exit: task {} does not exist", e.tid));
  drop_task(e.tid);
  ++_stats.applied["exit"];
}

void replayer::on(const ev_map& e) {
  auto& mm = mm_of(e.tid, "map");
  mm::address_space* file = nullptr;
  if (e.file) {
    auto it = _files.find(*e.file);
    if (it == _files.end()) throw replay_error(fmt::format("map: file {} was never declared", *e.file));
    file = it->second;
  }
  const mm::mmap_flags flags{e.fixed ? mm::map_fixed::replace : mm::map_fixed::noreplace, e.noreserve, e.stack};
  count("map", _m->do_mmap(mm, e.start, e.pages, prot_of(e.perms), e.perms.shared, file, e.pgoff, flags),
        fmt::format("map {} {}", e.tid, e.start));
}

void replayer::on(const ev_unmap& e) {
  count("unmap", _m->do_munmap(mm_of(e.tid, "unmap"), e.start, e.pages), fmt::format("unmap {} {}", e.tid, e.start));
}

void replayer::on(const ev_protect& e) {
  count("protect", _m->do_mprotect(mm_of(e.tid, "protect"), e.start, e.pages, prot_of(e.perms)),
        fmt::format("protect {} {}", e.tid, e.start));
}

void replayer::on(const ev_mremap& e) {
  auto& mm = mm_of(e.tid, "mremap");
  const auto what = fmt::format("mremap {} {}", e.tid, e.old_start);
  if (e.dontunmap) return unsupported("mremap dontunmap");
  if (e.old_start == e.new_start)
    return count("mremap", _m->do_mremap_resize(mm, e.old_start, e.old_pages, e.new_pages), what);
  // A move, as mremap_to()/move_vma() do it: a shrink first, in place; then the move, with
  // whatever the target held gone first (MREMAP_FIXED unmaps it); then the moved VMA grows.
  const std::uint64_t moved = std::min(e.old_pages, e.new_pages);
  int r = e.new_pages < e.old_pages ? _m->do_mremap_resize(mm, e.old_start, e.old_pages, e.new_pages) : 0;
  if (r == 0) r = _m->do_munmap(mm, e.new_start, e.new_pages);
  if (r == 0) r = _m->do_mremap_move(mm, e.old_start, moved, e.new_start);
  if (r == 0 && e.new_pages > moved) r = _m->do_mremap_resize(mm, e.new_start, moved, e.new_pages);
  count("mremap", r, what);
}

void replayer::on(const ev_brk& e) {
  auto& mm = mm_of(e.tid, "brk");
  // The heap is anonymous private memory that do_brk_flags() joins to the VMA before it.
  const vaddr_t from = page_up(e.old_end), to = page_up(e.new_end);
  const auto what = fmt::format("brk {} {}", e.tid, e.new_end);
  if (to > from)
    count("brk",
          _m->do_mmap(mm, from, pages_between(from, to), mm::PROT_READ_ | mm::PROT_WRITE_, false, nullptr, {},
                      mm::mmap_flags{mm::map_fixed::noreplace, false, false}),
          what);
  else if (to < from) count("brk", _m->do_munmap(mm, to, pages_between(to, from)), what);
  else ++_stats.applied["brk"];
}

void replayer::on(const ev_advise& e) {
  auto& mm = mm_of(e.tid, "advise");
  const auto what = fmt::format("advise {} {} {}", e.tid, e.start, e.advice);
  if (auto a = madv_of(e.advice)) return count("advise", _m->do_madvise(mm, e.start, e.pages, *a), what);
  // MADV_POPULATE_*: the kernel faults the range in through GUP, which no fault event shows.
  if (e.advice == "populate_read" || e.advice == "populate_write") {
    int r = 0;
    for (std::uint64_t i = 0; i < e.pages && r == 0; ++i)
      r = _m->access(mm, page_addr(e.start, i), e.advice == "populate_write", mm::content::unique(_writes++));
    return count("advise", r, what);
  }
  unsupported("advise " + e.advice);
}

void replayer::on(const ev_lock& e) {
  count(e.lock ? "lock" : "unlock", _m->do_mlock(mm_of(e.tid, "lock"), e.start, e.pages, e.lock),
        fmt::format("{} {} {}", e.lock ? "lock" : "unlock", e.tid, e.start));
}

void replayer::on(const ev_lock_all& e) {
  auto& mm = mm_of(e.tid, e.lock ? "lock-all" : "unlock-all");
  if (e.onfault) return unsupported("lock-all onfault");  // no VM_LOCKONFAULT in the model
  _m->do_mlockall(mm, e.lock && e.current, e.lock && e.future);
  ++_stats.applied[e.lock ? "lock-all" : "unlock-all"];
}

std::uint64_t replayer::content_of(const ev_fault& f) {
  if (f.value) return mm::content::filled(*f.value);
  return mm::content::unique(_writes++);
}

void replayer::on(const ev_fault& e) {
  auto& mm = mm_of(e.tid, "fault");
  const bool write = e.access == access::write;
  const std::uint64_t content = write ? content_of(e) : 0;
  count("fault", _m->access(mm, e.addr, write, content), fmt::format("fault {} {}", e.tid, e.addr));
}

void replayer::on(const ev_clear_refs& e) {
  auto& mm = mm_of(e.tid, "clear-refs");
  const auto type = e.type == "anon"   ? mm::clear_refs_type::anon
                    : e.type == "file" ? mm::clear_refs_type::mapped
                                       : mm::clear_refs_type::all;
  _m->clear_refs(mm, type);
  ++_stats.applied["clear-refs"];
}

void replayer::on(const ev_inject& e) {
  if (e.what == "reclaim") {
    // As the kernel runner reclaims: every process's accessed bits cleared first, so that
    // a page several processes share does not stay active.
    for (const auto& [mm, n] : _users) _m->clear_refs(*mm, mm::clear_refs_type::all);
    _m->shrink_all();
  } else {
    _m->ksm_run_to_fixpoint(e.what == "ksm-prune");
  }
  ++_stats.applied["inject " + e.what];
}

void replayer::on(const ev_lost& e) { _stats.lost += e.count; }

}  // namespace rmapkit::replay
