// Kernel counterpart: none. The rules that turn what perf saw into trace records
// (docs/rtrace.md, "Recording"): a task belongs to the tree when its parent does; a new
// mapping's range comes from its system call and its file from the MMAP2 record inside the
// call (MMAP2 describes the VMA after merging); what execve builds comes from MMAP2 alone;
// a fault below the stack grows it.
#include <sys/mman.h>
#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <tuple>

#include <fmt/format.h>

#include "record_internal.h"

namespace rmapkit::replay {

namespace {

constexpr std::uint64_t USER_END = 0x800000000000;  // x86-64's user address space
constexpr std::uint64_t STACK_LIMIT = 8ULL << 20;   // RLIMIT_STACK's default: how far a stack grows
constexpr std::uint64_t X86_PF_WRITE = 2, X86_PF_INSTR = 0x10;
constexpr std::uint64_t CLONE_VM_FLAG = 0x100;

std::uint64_t pages_of(std::uint64_t bytes) { return (bytes + PAGE_SIZE - 1) / PAGE_SIZE; }
vaddr_t page_of(std::uint64_t a) { return vaddr_t{a & ~(PAGE_SIZE - 1)}; }
perms perms_of(std::uint64_t prot, bool shared) {
  return {(prot & PROT_READ) != 0, (prot & PROT_WRITE) != 0, (prot & PROT_EXEC) != 0, shared};
}

/// MADV_* by number (include/uapi/asm-generic/mman-common.h), named as the trace names them.
std::string advice_name(std::uint64_t behavior) {
  static const std::map<std::uint64_t, const char*> names = {
      {0, "normal"},           {1, "random"},         {2, "sequential"},
      {3, "willneed"},         {4, "dontneed"},       {8, "free"},
      {9, "remove"},           {10, "dontfork"},      {11, "dofork"},
      {12, "mergeable"},       {13, "unmergeable"},   {14, "hugepage"},
      {15, "nohugepage"},      {16, "dontdump"},      {17, "dodump"},
      {18, "wipeonfork"},      {19, "keeponfork"},    {20, "cold"},
      {21, "pageout"},         {22, "populate_read"}, {23, "populate_write"},
      {24, "dontneed_locked"}, {25, "collapse"},      {102, "guard_install"},
      {103, "guard_remove"}};
  auto it = names.find(behavior);
  return it != names.end() ? it->second : fmt::format("advice-{}", behavior);
}

/// A file by the identity the kernel gives it: device and inode.
using file_key = std::tuple<std::uint32_t, std::uint32_t, std::uint64_t>;

/// How far each file is mapped, mremap() included: a file no path names when the
/// conversion runs (a memfd) is known only by its mappings, and an mremap that grows one
/// is no MMAP2 record. Mappings are followed by process, which is enough for the ones a
/// process grows itself; the newest mapping at an address is the one an mremap there
/// moves (anonymous ones too, so that a file mapping unmapped since does not count).
class file_extents {
 public:
  struct extent {
    file_key key;
    std::uint64_t pages = 0;
    std::string name;
  };

  void mapped(const item& it) {
    _maps[it.pid].push_back({it.v[0], it.v[0] + it.v[1], it.v[2], {it.maj, it.min, it.ino}, it.name});
  }
  void entered(const item& it) { _calls[it.tid] = {it.pid, it.v}; }
  /// The extent of the file an mremap's new range maps, when it maps one.
  std::optional<extent> exited(const item& it) {
    auto node = _calls.extract(it.tid);
    const auto ret = static_cast<std::int64_t>(it.v[0]);
    if (node.empty() || (ret < 0 && ret > -4096)) return std::nullopt;
    const auto [pid, a] = node.mapped();
    auto& maps = _maps[pid];
    for (auto m = maps.rbegin(); m != maps.rend(); ++m) {
      if (a[0] < m->start || a[0] >= m->end) continue;
      if (std::get<2>(m->key) == 0) return std::nullopt;  // anonymous memory
      const std::uint64_t offset = m->offset + (a[0] - m->start);
      auto moved = *m;
      moved.start = static_cast<std::uint64_t>(ret);
      moved.end = moved.start + a[2];
      moved.offset = offset;
      maps.push_back(moved);
      return extent{moved.key, pages_of(offset + a[2]), moved.name};
    }
    return std::nullopt;
  }

 private:
  struct mapping {
    std::uint64_t start = 0, end = 0, offset = 0;  // bytes
    file_key key;
    std::string name;
  };
  std::map<std::uint32_t, std::vector<mapping>> _maps;                                     // by process
  std::map<std::uint32_t, std::pair<std::uint32_t, std::array<std::uint64_t, 6>>> _calls;  // by task: process, args
};

class converter {
 public:
  converter(tid_t root, const std::vector<tracepoint_desc>& tps, writer& w, record_stats& st)
      : _root(root), _tps(tps), _w(w), _st(st) {}

  void run(std::vector<item> items, std::vector<raw_snapshot> snaps) {
    std::stable_sort(items.begin(), items.end(), [](const item& a, const item& b) { return a.time < b.time; });
    survey(items, snaps);
    std::size_t s = 0;
    for (const auto& it : items) {
      for (; s < snaps.size() && snaps[s].time < it.time; ++s) snapshot(snaps[s]);
      _now = std::max(_now, it.time);
      on(it);
    }
    for (; s < snaps.size(); ++s) snapshot(snaps[s]);
    if (_started && _st.kmem) write(*_st.kmem);
  }

 private:
  /// What the converter keeps of an mm: CLONE_VM tasks share it, fork copies it.
  struct mm_state {
    std::optional<std::uint64_t> brk;
    std::optional<std::uint64_t> stack_start, stack_end;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> special;  // [vdso], [vvar]: never replayed
  };
  /// An ELF image execve maps: the whole span first, then each segment over it with MAP_FIXED.
  /// The kernel unmaps the span past the first segment at once (elf_map()'s vm_munmap(), which
  /// no event shows), so what no segment covers is a hole.
  struct image {
    file_key file;
    std::uint64_t start = 0, end = 0;
    std::optional<std::uint64_t> first_end;  // where the second segment starts
    std::vector<std::pair<std::uint64_t, std::uint64_t>> covered;
  };
  /// A system call a task is inside.
  struct call {
    std::string name;
    std::array<std::uint64_t, 6> args{};
    std::optional<item> mmap2;      // mmap: the MMAP2 record of the new VMA
    std::vector<item> before_exec;  // execve: MMAP2 records before the COMM that says it succeeded
    bool exec_done = false;
    std::vector<image> images;  // execve: the ELF images it mapped
  };
  struct file_info {
    std::uint32_t id = 0;
    std::uint64_t pages = 1;
    std::string name;
    bool declared = false;
  };

  void write(event e) {
    _w.write({_now, std::move(e)});
    ++_st.records;
  }
  void not_traced(const std::string& what) { ++_st.not_traced[what]; }
  bool in_tree(tid_t t) const { return _tree.contains(t); }

  /// Sizes and names of the files, and the clone flags of each new task, before the pass.
  void survey(const std::vector<item>& items, const std::vector<raw_snapshot>& snaps) {
    file_extents extents;
    for (const auto& it : items) {
      if (it.what == item::kind::mmap2) extents.mapped(it);
      if (it.what == item::kind::mmap2 && it.ino != 0 && !is_special_mapping(it.name))
        note_file({it.maj, it.min, it.ino}, pages_of(it.v[2] + it.v[1]), it.name);
      if (it.what != item::kind::tracepoint) continue;
      const auto& name = _tps[it.tp].name;
      if (name == "task:task_newtask") _clone_flags[static_cast<tid_t>(it.v[0])] = it.v[1];
      else if (name == "syscalls:sys_enter_mremap") extents.entered(it);
      else if (name == "syscalls:sys_exit_mremap")
        if (auto grown = extents.exited(it)) note_file(grown->key, grown->pages, grown->name);
    }
    for (const auto& s : snaps)
      for (const auto& p : s.processes)
        for (const auto& v : p.vmas)
          if (v.inode != 0 && !is_shmem(v))
            note_file(key_of(v), pages_of(v.offset) + pages_between(v.start, v.end), v.path);
  }
  void note_file(const file_key& k, std::uint64_t extent, const std::string& path) {
    auto [it, fresh] = _files.try_emplace(k);
    if (fresh) {
      it->second.id = static_cast<std::uint32_t>(_files.size() - 1);
      std::string name = path.substr(path.rfind('/') + 1);
      std::replace_if(
          name.begin(), name.end(), [](char c) { return c == ' ' || c == '\t'; }, '_');
      it->second.name = name.empty() ? "file" : name;
      // The file's size now, when the path still names it: pages past every mapping count.
      struct stat sb {};
      if (::stat(path.c_str(), &sb) == 0 && sb.st_ino == std::get<2>(k))
        it->second.pages = std::max<std::uint64_t>(1, pages_of(static_cast<std::uint64_t>(sb.st_size)));
    }
    it->second.pages = std::max(it->second.pages, extent);
  }
  static file_key key_of(const kcheck::maps_entry& v) {
    unsigned maj = 0, min = 0;
    std::sscanf(v.dev.c_str(), "%x:%x", &maj, &min);
    return {maj, min, v.inode};
  }
  static bool is_shmem(const kcheck::maps_entry& v) {
    return v.perms.size() == 4 && v.perms[3] == 's' && (v.path.starts_with("/dev/zero") || v.path.starts_with("/SYSV"));
  }
  std::uint32_t file_id(const file_key& k) {
    auto& f = _files.at(k);
    if (!f.declared) {
      write(ev_file{f.id, f.pages, f.name});
      f.declared = true;
    }
    return f.id;
  }

  mm_state& mm(tid_t t) {
    auto& p = _mm[t];
    if (!p) p = std::make_shared<mm_state>();
    return *p;
  }

  void on(const item& it) {
    switch (it.what) {
      case item::kind::tracepoint: return tracepoint(it);
      case item::kind::mmap2: return mmap2(it);
      case item::kind::exec: return exec(it.tid);
      case item::kind::fork: return fork(it);
      case item::kind::exit:
        if (!in_tree(it.tid)) return;
        _tree.erase(it.tid);
        _mm.erase(it.tid);
        _calls.erase(it.tid);
        return write(ev_exit{it.tid});
      case item::kind::lost:
        if (_started) write(ev_lost{it.v[0]});
        return;
    }
  }

  void exec(tid_t t) {
    if (t == _root && !_started) {
      _started = true;
      _tree.insert(t);
      ++_st.tasks;
    }
    if (!in_tree(t)) return;
    write(ev_exec{t});
    _mm[t] = std::make_shared<mm_state>();
    auto c = _calls.find(t);
    if (c == _calls.end()) return;
    c->second.exec_done = true;
    for (const auto& m : std::exchange(c->second.before_exec, {})) exec_map(m);
  }

  void fork(const item& it) {
    const tid_t parent = static_cast<tid_t>(it.v[1]), child = it.tid;
    if (!_started || !in_tree(parent) || it.pid == 0) return;
    _tree.insert(child);
    ++_st.tasks;
    auto flags = _clone_flags.find(child);
    const bool thread = it.pid == it.v[0];  // the same thread group: a thread
    if (thread || (flags != _clone_flags.end() && (flags->second & CLONE_VM_FLAG))) {
      _mm[child] = _mm[parent];
      return write(ev_clone_vm{parent, child});
    }
    _mm[child] = std::make_shared<mm_state>(mm(parent));
    write(ev_fork{parent, child});
  }

  void mmap2(const item& it) {
    if (!in_tree(it.tid) && !(it.tid == _root && !_started)) return;
    auto c = _calls.find(it.tid);
    if (c == _calls.end()) return not_traced("MMAP2 outside a traced call");
    auto& cl = c->second;
    if (cl.name == "mmap") {
      cl.mmap2 = it;
    } else if (cl.name == "execve" || cl.name == "execveat") {
      if (cl.exec_done) exec_map(it);
      else cl.before_exec.push_back(it);
    }
    // mprotect, brk, mremap: their own arguments say what changed.
  }

  /// A VMA execve built: the binary's and the interpreter's segments, the stack.
  void exec_map(const item& it) {
    auto& st = mm(it.tid);
    const std::uint64_t start = it.v[0], len = it.v[1];
    if (is_special_mapping(it.name)) {
      st.special.emplace_back(start, start + len);
      return;
    }
    if (it.name == "[stack]") st.stack_start = start, st.stack_end = start + len;
    ev_map m{it.tid, vaddr_t{start}, pages_of(len), perms_of(it.v[3], (it.v[4] & MAP_SHARED) != 0), {},
             {},     true,           false};
    if (it.ino != 0) {
      m.file = file_id({it.maj, it.min, it.ino});
      m.pgoff = pgoff_t{it.v[2] / PAGE_SIZE};
    }
    write(m);
    if (auto c = _calls.find(it.tid); c != _calls.end()) note_image(c->second, it, start, start + len);
  }

  void note_image(call& c, const item& it, std::uint64_t start, std::uint64_t end) {
    const file_key k{it.maj, it.min, it.ino};
    for (auto& img : c.images) {
      if (start < img.start || end > img.end || start >= img.end) continue;
      if (it.ino != 0 && img.file == k && !img.first_end) img.first_end = start;
      img.covered.emplace_back(start, end);
      return;
    }
    if (it.ino != 0) c.images.push_back({k, start, end, std::nullopt, {}});
  }

  /// The holes of each image execve mapped: past its first segment, what no segment (or the
  /// bss after them) covers.
  void unmap_image_holes(tid_t t, call& c) {
    for (auto& img : c.images) {
      if (!img.first_end) continue;
      std::sort(img.covered.begin(), img.covered.end());
      std::uint64_t at = *img.first_end;
      auto hole = [&](std::uint64_t to) {
        if (to > at) write(ev_unmap{t, vaddr_t{at}, (to - at) / PAGE_SIZE});
      };
      for (auto [s, e] : img.covered) {
        hole(s);
        at = std::max(at, e);
      }
      hole(img.end);
    }
  }

  void tracepoint(const item& it) {
    const auto& name = _tps[it.tp].name;
    if (!in_tree(it.tid) && !(it.tid == _root && !_started)) return;
    if (name.starts_with("syscalls:sys_enter_")) {
      _calls[it.tid] = call{name.substr(19), it.v, {}, {}, false, {}};
      return;
    }
    if (!_started) return;  // the recorder's own child before it became the command
    if (name.starts_with("syscalls:sys_exit_"))
      return syscall_exit(it.tid, name.substr(18), static_cast<std::int64_t>(it.v[0]));
    if (name == "exceptions:page_fault_user" || name == "exceptions:page_fault_kernel")
      return fault(it.tid, it.v[0], it.v[2], name == "exceptions:page_fault_user");
  }

  void fault(tid_t t, std::uint64_t addr, std::uint64_t error, bool user) {
    if (addr >= USER_END) return;  // the kernel's own addresses
    auto& st = mm(t);
    for (auto [s, e] : st.special)
      if (addr >= s && addr < e) return not_traced("fault on [vdso] or [vvar]");
    const vaddr_t page = page_of(addr);
    // expand_downwards(): a fault below the stack grows it, within the stack's limit.
    if (st.stack_start && page.value < *st.stack_start && page.value + STACK_LIMIT >= *st.stack_start) {
      write(ev_map{
          t, page, (*st.stack_start - page.value) / PAGE_SIZE, {true, true, false, false}, {}, {}, false, false});
      st.stack_start = page.value;
    }
    const access a = (error & X86_PF_INSTR) ? access::exec : (error & X86_PF_WRITE) ? access::write : access::read;
    write(ev_fault{t, page, a, user, std::nullopt});
  }

  void syscall_exit(tid_t t, const std::string& name, std::int64_t ret) {
    auto node = _calls.extract(t);
    if (node.empty() || node.mapped().name != name) return;
    const auto& c = node.mapped();
    if (ret < 0 && ret > -4096) return;  // the call failed: it changed nothing
    const auto& a = c.args;
    if (name == "mmap") return mmap(t, c, static_cast<std::uint64_t>(ret));
    if (name == "munmap") return write(ev_unmap{t, page_of(a[0]), pages_of(a[1])});
    if (name == "mprotect" || name == "pkey_mprotect")
      return write(ev_protect{t, page_of(a[0]), pages_of(a[1]), perms_of(a[2], false)});
    if (name == "mremap")
      return write(ev_mremap{t, page_of(a[0]), pages_of(a[1]), page_of(static_cast<std::uint64_t>(ret)), pages_of(a[2]),
                             (a[3] & 4) != 0});
    if (name == "madvise") return write(ev_advise{t, page_of(a[0]), pages_of(a[1]), advice_name(a[2])});
    if (name == "mlock" || (name == "mlock2" && a[2] == 0))
      return write(ev_lock{t, page_of(a[0]), pages_of(a[1]), true});
    if (name == "munlock") return write(ev_lock{t, page_of(a[0]), pages_of(a[1]), false});
    if (name == "mlockall") return write(ev_lock_all{t, true, (a[0] & 1) != 0, (a[0] & 2) != 0, (a[0] & 4) != 0});
    if (name == "munlockall") return write(ev_lock_all{t, false});
    if (name == "brk") return brk(t, static_cast<std::uint64_t>(ret));
    if (name == "execve" || name == "execveat") return exec_stack(t, node.mapped());
    not_traced(name == "mlock2" ? "mlock2 MLOCK_ONFAULT" : name);
  }

  /// The page execve wrote the arguments and environment into, at the top of the new stack,
  /// through GUP: no fault shows it. Arguments and environment beyond 4 KiB take more pages,
  /// which the trace cannot tell from the random gap create_elf_tables() leaves below them.
  void exec_stack(tid_t t, call& c) {
    const auto& st = mm(t);
    if (!c.exec_done) return;
    unmap_image_holes(t, c);
    if (!st.stack_end) return;
    write(ev_fault{t, vaddr_t{*st.stack_end - PAGE_SIZE}, access::write, false, std::nullopt});
  }

  void mmap(tid_t t, const call& c, std::uint64_t start) {
    const auto& a = c.args;  // addr, len, prot, flags, fd, off
    const std::uint64_t flags = a[3];
    const bool shared = (flags & MAP_TYPE) == MAP_SHARED || (flags & MAP_TYPE) == MAP_SHARED_VALIDATE;
    ev_map m{t,
             vaddr_t{start},
             pages_of(a[1]),
             perms_of(a[2], shared),
             {},
             {},
             (flags & MAP_FIXED) != 0,
             (flags & MAP_NORESERVE) != 0,
             (flags & MAP_STACK) != 0};
    if (!(flags & MAP_ANONYMOUS)) {
      if (!c.mmap2) return not_traced("mmap of a file without its MMAP2 record");
      // /dev/zero maps as anonymous memory (shmem when shared).
      if (c.mmap2->ino != 0 && !c.mmap2->name.starts_with("/dev/zero")) {
        m.file = file_id({c.mmap2->maj, c.mmap2->min, c.mmap2->ino});
        m.pgoff = pgoff_t{a[5] / PAGE_SIZE};
      }
    }
    write(m);
  }

  void brk(tid_t t, std::uint64_t now) {
    auto& st = mm(t);
    if (st.brk && *st.brk != now) write(ev_brk{t, vaddr_t{*st.brk}, vaddr_t{now}});
    st.brk = now;  // the first call (brk(0)) only says where the heap starts
  }

  void snapshot(const raw_snapshot& raw) {
    if (!_started) return;
    _now = std::max(_now, raw.time);
    ev_snapshot s{fmt::format("at {} ns", raw.time), {}};
    // A process that shares its mm with another (a vfork child before its exec) is one
    // address space, listed once under the lowest task id that has it, as the replay lists
    // its mms: /proc shows it under each process.
    std::map<const mm_state*, tid_t> owner;  // _mm is by tid: the first is the lowest
    for (const auto& [tid, m] : _mm)
      if (in_tree(tid)) owner.try_emplace(m.get(), tid);
    std::set<const mm_state*> listed;
    for (const auto& p : raw.processes) {
      if (!in_tree(p.pid)) continue;
      tid_t tid = p.pid;
      if (auto m = _mm.find(p.pid); m != _mm.end()) {
        if (!listed.insert(m->second.get()).second) continue;
        tid = owner.at(m->second.get());
      }
      snap_process sp{tid, {}, p.pages};
      for (const auto& v : p.vmas) {
        snap_vma sv{v.start, v.end, parse_perms(v.perms).value_or(perms{}), false, {}, {}};
        if (is_shmem(v)) {
          sv.shmem = true;
        } else if (v.inode != 0) {
          sv.file = file_id(key_of(v));
          sv.pgoff = pgoff_t{v.offset / PAGE_SIZE};
        }
        sp.vmas.push_back(sv);
      }
      s.processes.push_back(std::move(sp));
    }
    std::sort(s.processes.begin(), s.processes.end(), [](const auto& a, const auto& b) { return a.tid < b.tid; });
    write(std::move(s));
    ++_st.snapshots;
  }

  tid_t _root;
  const std::vector<tracepoint_desc>& _tps;
  writer& _w;
  record_stats& _st;
  nsec_t _now = 0;
  bool _started = false;
  std::set<tid_t> _tree;
  std::map<tid_t, std::shared_ptr<mm_state>> _mm;
  std::map<tid_t, call> _calls;
  std::map<tid_t, std::uint64_t> _clone_flags;
  std::map<file_key, file_info> _files;
};

}  // namespace

void convert_recording(tid_t root, const std::vector<tracepoint_desc>& tps, std::vector<item> items,
                       std::vector<raw_snapshot> snaps, writer& w, record_stats& st) {
  converter(root, tps, w, st).run(std::move(items), std::move(snaps));
}

}  // namespace rmapkit::replay
