// Kernel counterpart: none; this drives the kernel's own instruments (perf_event_open(2),
// tracefs formats, cgroup v2, /proc/PID/pagemap) to record what a process tree does to
// memory. The conversion of what they show into trace records is record_convert.cc.
#include "rmapkit/replay/record.h"

#include <fcntl.h>
#include <linux/perf_event.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "kcheck/fd.h"
#include "kcheck/procfs.h"
#include "kcheck/tracefs.h"
#include "record_internal.h"
#include "rmapkit/version.h"

namespace rmapkit::replay {

namespace kc = rmapkit::kcheck;

namespace {

constexpr const char* CGROUP_PREFIX = "rmapkit-record-";

[[noreturn]] void fail_errno(const std::string& what) {
  throw record_error(fmt::format("{}: {}", what, std::strerror(errno)));
}

/// Where cgroup v2 is mounted (the unified hierarchy), or nothing.
std::optional<std::string> cgroup2_root() {
  std::ifstream in("/proc/self/mounts");
  std::string dev, dir, type, rest;
  while (in >> dev >> dir >> type && std::getline(in, rest))
    if (type == "cgroup2") return dir;
  return std::nullopt;
}

// ---- tracepoints: ids and field layouts from a private tracefs mount --------------------

/// The numeric fields of a tracepoint's format after the common ones (and a syscall's
/// number), in order: what tp_fields::v holds.
std::vector<std::pair<std::uint32_t, std::uint32_t>> numeric_fields(const std::string& format) {
  std::vector<std::pair<std::uint32_t, std::uint32_t>> out;
  std::istringstream in(format);
  for (std::string line; std::getline(in, line);) {
    auto f = line.find("field:");
    if (f == std::string::npos || line.find("common_") != std::string::npos) continue;
    if (line.find("__syscall_nr") != std::string::npos || line.find('[') != std::string::npos) continue;
    auto off = line.find("offset:"), size = line.find("size:");
    if (off == std::string::npos || size == std::string::npos) continue;
    const auto o = static_cast<std::uint32_t>(std::stoul(line.substr(off + 7)));
    const auto s = static_cast<std::uint32_t>(std::stoul(line.substr(size + 5)));
    if (s <= 8) out.emplace_back(o, s);
  }
  return out;
}

/// tracefs mounted on a directory of our own for as long as the ids and formats are read:
/// nothing of /sys/kernel/tracing (or of anyone's tracing) is touched.
class private_tracefs {
 public:
  private_tracefs() {
    char tmpl[] = "/tmp/rmapkit-record-tracefs-XXXXXX";
    if (!::mkdtemp(tmpl)) fail_errno("cannot make a directory for tracefs");
    _dir = tmpl;
    if (::mount("nodev", _dir.c_str(), "tracefs", 0, nullptr) != 0) {
      const int e = errno;
      ::rmdir(_dir.c_str());
      errno = e;
      fail_errno("cannot mount tracefs");
    }
  }
  ~private_tracefs() {
    (void)::umount(_dir.c_str());
    (void)::rmdir(_dir.c_str());
  }
  private_tracefs(const private_tracefs&) = delete;
  private_tracefs& operator=(const private_tracefs&) = delete;

  [[nodiscard]] std::optional<tracepoint_desc> find(const std::string& sys, const std::string& name) const {
    const auto base = fmt::format("{}/events/{}/{}/", _dir, sys, name);
    try {
      return tracepoint_desc{sys + ":" + name, kc::read_number(base + "id"),
                             numeric_fields(kc::read_text(base + "format"))};
    } catch (const std::exception&) {
      return std::nullopt;  // not in this kernel (pkey_mprotect on a machine without pkeys)
    }
  }

 private:
  std::string _dir;
};

// ---- the cgroup the command runs in ---------------------------------------------------

class record_cgroup {
 public:
  explicit record_cgroup(const std::string& root) : _dir(fmt::format("{}/{}{}", root, CGROUP_PREFIX, ::getpid())) {
    remove_stale(root);
    if (::mkdir(_dir.c_str(), 0755) != 0) fail_errno("cannot create cgroup " + _dir);
    _fd = kc::unique_fd(::open(_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!_fd) fail_errno("cannot open cgroup " + _dir);
  }
  ~record_cgroup() {
    // Whatever the tree left running goes with the recording.
    (void)kc::write_text(_dir + "/cgroup.kill", "1");
    for (int i = 0; i < 100 && populated(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    (void)::rmdir(_dir.c_str());
  }
  record_cgroup(const record_cgroup&) = delete;
  record_cgroup& operator=(const record_cgroup&) = delete;

  [[nodiscard]] int fd() const { return _fd.get(); }
  void add(pid_t pid) const {
    if (int e = kc::write_text(_dir + "/cgroup.procs", std::to_string(pid)); e != 0)
      throw record_error(fmt::format("cannot move the command into {}: {}", _dir, std::strerror(e)));
  }
  [[nodiscard]] bool populated() const { return event("populated") == 1; }
  [[nodiscard]] std::vector<pid_t> procs() const {
    std::vector<pid_t> out;
    std::istringstream in(kc::read_text(_dir + "/cgroup.procs"));
    for (pid_t p = 0; in >> p;) out.push_back(p);
    return out;
  }
  /// Freezes (true) or thaws the tree, and waits until it is so.
  /// Whether the whole tree reached the state within 2 s (a task finishing a system call on
  /// a loaded machine can take long to reach the freezer).
  bool freeze(bool on) const {
    (void)kc::write_text(_dir + "/cgroup.freeze", on ? "1" : "0");
    for (int i = 0; i < 10000; ++i) {
      if (event("frozen") == (on ? 1 : 0)) return true;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    return false;
  }

 private:
  [[nodiscard]] int event(const std::string& key) const {
    std::istringstream in(kc::read_text(_dir + "/cgroup.events"));
    for (std::string k; in >> k;) {
      int v = 0;
      in >> v;
      if (k == key) return v;
    }
    return -1;
  }
  static void remove_stale(const std::string& root) {
    for (const auto& name : kc::list_dir(root)) {
      const pid_t pid = kc::pid_suffix(name, CGROUP_PREFIX);
      if (pid > 0 && !kc::pid_alive(pid)) (void)::rmdir(fmt::format("{}/{}", root, name).c_str());
    }
  }
  std::string _dir;
  kc::unique_fd _fd;
};

// ---- perf: one ring per CPU, the side band and every tracepoint writing into it ----------

int perf_event_open(perf_event_attr& attr, int cgroup, int cpu, int group) {
  return static_cast<int>(
      ::syscall(SYS_perf_event_open, &attr, cgroup, cpu, group, PERF_FLAG_PID_CGROUP | PERF_FLAG_FD_CLOEXEC));
}

perf_event_attr base_attr() {
  perf_event_attr a{};
  a.size = sizeof a;
  a.sample_period = 1;
  a.sample_type = PERF_SAMPLE_IDENTIFIER | PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_RAW;
  a.sample_id_all = 1;
  a.use_clockid = 1;
  a.clockid = CLOCK_MONOTONIC;  // so that a snapshot's clock_gettime() orders against the events
  a.watermark = 1;
  return a;
}

class cpu_ring {
 public:
  cpu_ring(int cgroup, int cpu, std::size_t pages, const std::vector<tracepoint_desc>& tps,
           std::map<std::uint64_t, std::size_t>& ids) {
    auto side = base_attr();
    side.type = PERF_TYPE_SOFTWARE;
    side.config = PERF_COUNT_SW_DUMMY;
    side.sample_type &= ~static_cast<std::uint64_t>(PERF_SAMPLE_RAW);
    side.mmap = side.mmap2 = side.mmap_data = side.comm = side.comm_exec = side.task = 1;
    side.wakeup_watermark = static_cast<std::uint32_t>(pages * 4096 / 4);
    _leader = kc::unique_fd(perf_event_open(side, cgroup, cpu, -1));
    if (!_leader) fail_errno(fmt::format("perf_event_open of the side band on CPU {}", cpu));
    _bytes = (pages + 1) * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    _map = ::mmap(nullptr, _bytes, PROT_READ | PROT_WRITE, MAP_SHARED, _leader.get(), 0);
    if (_map == MAP_FAILED) fail_errno(fmt::format("cannot map CPU {}'s perf buffer", cpu));
    ids[id_of(_leader.get())] = SIDE_BAND;
    for (std::size_t i = 0; i < tps.size(); ++i) {
      auto a = base_attr();
      a.type = PERF_TYPE_TRACEPOINT;
      a.config = tps[i].id;
      kc::unique_fd fd(perf_event_open(a, cgroup, cpu, -1));
      if (!fd) fail_errno(fmt::format("perf_event_open of {} on CPU {}", tps[i].name, cpu));
      if (::ioctl(fd.get(), PERF_EVENT_IOC_SET_OUTPUT, _leader.get()) != 0)
        fail_errno(fmt::format("cannot send {} into CPU {}'s buffer", tps[i].name, cpu));
      ids[id_of(fd.get())] = i;
      _events.push_back(std::move(fd));
    }
  }
  ~cpu_ring() {
    if (_map && _map != MAP_FAILED) ::munmap(_map, _bytes);
  }
  cpu_ring(const cpu_ring&) = delete;
  cpu_ring& operator=(const cpu_ring&) = delete;

  [[nodiscard]] int fd() const { return _leader.get(); }

  /// Hands each whole record in the buffer to @f (copied out, so a wrapped one is whole).
  template <class F>
  void drain(F&& f) {
    auto* meta = static_cast<perf_event_mmap_page*>(_map);
    const std::uint64_t head = __atomic_load_n(&meta->data_head, __ATOMIC_ACQUIRE);
    std::uint64_t tail = meta->data_tail;
    const auto* data = static_cast<const std::uint8_t*>(_map) + meta->data_offset;
    const std::uint64_t size = meta->data_size;
    std::vector<std::uint8_t> rec;
    while (tail < head) {
      perf_event_header h{};
      copy_out(data, size, tail, &h, sizeof h);
      rec.resize(h.size);
      copy_out(data, size, tail, rec.data(), h.size);
      f(rec);
      tail += h.size;
    }
    __atomic_store_n(&meta->data_tail, tail, __ATOMIC_RELEASE);
  }

 private:
  static std::uint64_t id_of(int fd) {
    std::uint64_t id = 0;
    if (::ioctl(fd, PERF_EVENT_IOC_ID, &id) != 0) fail_errno("PERF_EVENT_IOC_ID");
    return id;
  }
  static void copy_out(const std::uint8_t* data, std::uint64_t size, std::uint64_t at, void* to, std::size_t n) {
    auto* out = static_cast<std::uint8_t*>(to);
    const std::uint64_t first = std::min<std::uint64_t>(n, size - at % size);
    std::memcpy(out, data + at % size, first);
    std::memcpy(out + first, data, n - first);
  }

  kc::unique_fd _leader;
  std::vector<kc::unique_fd> _events;
  void* _map = nullptr;
  std::size_t _bytes = 0;
};

template <class T>
T load(const std::vector<std::uint8_t>& b, std::size_t at) {
  T v{};
  if (at + sizeof v <= b.size()) std::memcpy(&v, b.data() + at, sizeof v);
  return v;
}

/// One perf record, parsed into what the conversion needs.
std::optional<item> parse(const std::vector<std::uint8_t>& rec, const std::map<std::uint64_t, std::size_t>& ids,
                          const std::vector<tracepoint_desc>& tps, record_stats& st) {
  const auto h = load<perf_event_header>(rec, 0);
  item it;
  // Side-band records end with the sample id: pid, tid, time, identifier.
  auto trailer_time = [&] { return load<std::uint64_t>(rec, rec.size() - 16); };
  switch (h.type) {
    case PERF_RECORD_SAMPLE: {
      ++st.samples;
      const auto id = load<std::uint64_t>(rec, 8);
      auto tp = ids.find(id);
      if (tp == ids.end() || tp->second == SIDE_BAND) return std::nullopt;
      it.what = item::kind::tracepoint;
      it.tp = tp->second;
      it.pid = load<std::uint32_t>(rec, 16);
      it.tid = load<std::uint32_t>(rec, 20);
      it.time = load<std::uint64_t>(rec, 24);
      const auto raw_size = load<std::uint32_t>(rec, 32);
      const std::size_t raw = 36;
      const auto& fields = tps[it.tp].fields;
      for (std::size_t i = 0; i < fields.size() && i < it.v.size(); ++i) {
        const auto [off, size] = fields[i];
        if (off + size > raw_size) break;
        it.v[i] = size == 8   ? load<std::uint64_t>(rec, raw + off)
                  : size == 4 ? load<std::uint32_t>(rec, raw + off)
                  : size == 2 ? load<std::uint16_t>(rec, raw + off)
                              : load<std::uint8_t>(rec, raw + off);
      }
      return it;
    }
    case PERF_RECORD_MMAP2: {
      ++st.side_band;
      it.what = item::kind::mmap2;
      it.pid = load<std::uint32_t>(rec, 8);
      it.tid = load<std::uint32_t>(rec, 12);
      it.v = {load<std::uint64_t>(rec, 16), load<std::uint64_t>(rec, 24), load<std::uint64_t>(rec, 32),
              load<std::uint32_t>(rec, 64), load<std::uint32_t>(rec, 68), 0};
      it.maj = load<std::uint32_t>(rec, 40);
      it.min = load<std::uint32_t>(rec, 44);
      it.ino = load<std::uint64_t>(rec, 48);
      it.gen = load<std::uint64_t>(rec, 56);
      const char* name = reinterpret_cast<const char*>(rec.data() + 72);
      it.name.assign(name, ::strnlen(name, rec.size() - 72));
      it.time = trailer_time();
      return it;
    }
    case PERF_RECORD_FORK:
    case PERF_RECORD_EXIT:
      ++st.side_band;
      it.what = h.type == PERF_RECORD_FORK ? item::kind::fork : item::kind::exit;
      it.pid = load<std::uint32_t>(rec, 8);
      it.v[0] = load<std::uint32_t>(rec, 12);  // ppid
      it.tid = load<std::uint32_t>(rec, 16);
      it.v[1] = load<std::uint32_t>(rec, 20);  // ptid
      it.time = load<std::uint64_t>(rec, 24);
      return it;
    case PERF_RECORD_COMM:
      ++st.side_band;
      if (!(h.misc & PERF_RECORD_MISC_COMM_EXEC)) return std::nullopt;
      it.what = item::kind::exec;
      it.pid = load<std::uint32_t>(rec, 8);
      it.tid = load<std::uint32_t>(rec, 12);
      it.time = trailer_time();
      return it;
    case PERF_RECORD_LOST:
      it.what = item::kind::lost;
      it.v[0] = load<std::uint64_t>(rec, 16);
      st.lost += it.v[0];
      it.time = trailer_time();
      return it;
    default: return std::nullopt;
  }
}

constexpr std::uint64_t PAGEMAP_CHUNK = 1 << 16;  // pagemap entries read at once (512 KiB)

/// A pagemap entry as a snapshot's page: a frame (its state from kpageflags) or a swap
/// entry; nothing for an empty PTE.
std::optional<snap_page> page_of(std::uint64_t e, vaddr_t addr, const kc::kpage_reader& kpage) {
  snap_page pg{addr, page_state::anon, 0, false};
  if (e & kc::PM_PRESENT) {
    pg.frame = e & kc::PM_PFN_MASK;
    const auto flags = kpage.flags(pfn_t{pg.frame});
    auto bit = [&](unsigned b) { return ((flags >> b) & 1) != 0; };
    if (bit(kc::KPF_ZERO_PAGE)) pg.state = page_state::zero, pg.frame = 0;
    else if (bit(kc::KPF_KSM)) pg.state = page_state::ksm;
    else if (bit(kc::KPF_ANON)) pg.state = page_state::anon, pg.exclusive = bit(kc::KPF_ANON_EXCLUSIVE);
    else pg.state = page_state::file;
    return pg;
  }
  if (e & kc::PM_SWAP) {
    pg.state = page_state::swap;
    pg.frame = e & kc::PM_PFN_MASK;
    return pg;
  }
  return std::nullopt;
}

/// The tree's memory as /proc shows it while the cgroup is frozen.
raw_snapshot read_snapshot(const record_cgroup& cg, nsec_t time) {
  raw_snapshot s;
  s.time = time;
  kc::kpage_reader kpage;
  for (pid_t pid : cg.procs()) {
    raw_snapshot::process p;
    p.pid = static_cast<tid_t>(pid);
    try {
      for (auto& v : kc::read_vmas(pid, vaddr_t{0}, vaddr_t{~std::uint64_t{0}})) {
        if (is_special_mapping(v.path)) continue;
        // In chunks, so that a huge reservation (a sanitizer's shadow, a JIT's heap) costs
        // time in proportion but never memory.
        const std::uint64_t pages = pages_between(v.start, v.end);
        for (std::uint64_t at = 0; at < pages; at += PAGEMAP_CHUNK) {
          const vaddr_t from = page_addr(v.start, at);
          const auto entries = kc::read_pagemap(pid, from, std::min(PAGEMAP_CHUNK, pages - at));
          for (std::size_t i = 0; i < entries.size(); ++i)
            if (auto pg = page_of(entries[i], page_addr(from, i), kpage)) p.pages.push_back(*pg);
        }
        p.vmas.push_back(std::move(v));
      }
    } catch (const std::system_error&) {
      continue;  // it exited between cgroup.procs and its /proc files
    }
    s.processes.push_back(std::move(p));
  }
  return s;
}

nsec_t monotonic_now() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<nsec_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<nsec_t>(ts.tv_nsec);
}

/// The tracepoints the recorder takes, those the kernel has.
std::vector<tracepoint_desc> tracepoints() {
  private_tracefs fs;
  std::vector<tracepoint_desc> out;
  auto add = [&](const std::string& sys, const std::string& name) {
    if (auto d = fs.find(sys, name)) out.push_back(std::move(*d));
  };
  for (const char* call : {"mmap", "munmap", "mprotect", "pkey_mprotect", "mremap", "brk", "madvise", "mlock", "mlock2",
                           "munlock", "mlockall", "munlockall", "execve", "execveat", "shmat", "shmdt",
                           "remap_file_pages", "process_vm_writev", "mseal"}) {
    add("syscalls", fmt::format("sys_enter_{}", call));
    add("syscalls", fmt::format("sys_exit_{}", call));
  }
  add("exceptions", "page_fault_user");
  add("exceptions", "page_fault_kernel");
  add("task", "task_newtask");
  for (const char* must : {"syscalls:sys_enter_mmap", "exceptions:page_fault_user", "task:task_newtask"})
    if (std::none_of(out.begin(), out.end(), [&](const auto& d) { return d.name == must; }))
      throw record_error(fmt::format("this kernel has no tracepoint {}", must));
  return out;
}

/// The child: waits for the word to go, then becomes the command.
[[noreturn]] void run_child(const std::vector<std::string>& argv, int go) {
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGQUIT, SIG_DFL);
  char c = 0;
  if (::read(go, &c, 1) != 1) ::_exit(127);
  ::close(go);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  ::execvp(args[0], args.data());
  std::fprintf(stderr, "rmapkit record: cannot run %s: %s\n", args[0], std::strerror(errno));
  ::_exit(127);
}

int shell_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

}  // namespace

std::optional<std::string> record_unavailable() {
  if (::geteuid() != 0) return "recording needs root (perf_event_open system-wide, cgroups, /proc/kpageflags)";
  if (!cgroup2_root()) return "recording needs cgroup v2 mounted (the unified hierarchy)";
  return std::nullopt;
}

header recording_header() {
  utsname u{};
  ::uname(&u);
  return {u.release, PAGE_SIZE, "rmapkit " RMAPKIT_VERSION " record"};
}

record_stats record_command(const std::vector<std::string>& argv, writer& w, const record_options& opts) {
  if (argv.empty()) throw record_error("no command to record");
  if (auto why = record_unavailable()) throw record_error(*why);
  const auto tps = tracepoints();
  record_cgroup cg(*cgroup2_root());
  record_stats st;
  std::optional<kc::kmem_tracer> kmem;
  if (opts.kmem) {
    try {
      kmem.emplace();
    } catch (const std::exception& e) {
      ++st.not_traced[fmt::format("the kernel's anon_vma counts ({})", e.what())];
    }
  }

  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) fail_errno("pipe");
  kc::unique_fd go_read(pipefd[0]), go_write(pipefd[1]);
  // Orphans of the tree become ours, so that they are reaped and their exits seen.
  (void)::prctl(PR_SET_CHILD_SUBREAPER, 1);
  const pid_t root = ::fork();
  if (root < 0) fail_errno("fork");
  if (root == 0) run_child(argv, go_read.get());
  go_read.reset();
  // ^C is for the command: the recording ends when its tree does.
  auto old_int = std::signal(SIGINT, SIG_IGN), old_quit = std::signal(SIGQUIT, SIG_IGN);

  std::vector<item> items;
  std::vector<raw_snapshot> snaps;
  std::optional<int> status;
  try {
    cg.add(root);
    if (kmem) kmem->follow(root);
    std::map<std::uint64_t, std::size_t> ids;
    std::vector<std::unique_ptr<cpu_ring>> rings;
    const long cpus = ::sysconf(_SC_NPROCESSORS_CONF);
    for (int cpu = 0; cpu < cpus; ++cpu)
      rings.push_back(std::make_unique<cpu_ring>(cg.fd(), cpu, opts.buffer_pages, tps, ids));
    auto drain = [&] {
      for (auto& r : rings)
        r->drain([&](const std::vector<std::uint8_t>& rec) {
          if (auto it = parse(rec, ids, tps, st)) items.push_back(std::move(*it));
        });
    };
    if (::write(go_write.get(), "g", 1) != 1) fail_errno("cannot start the command");
    go_write.reset();
    auto next_check = std::chrono::steady_clock::now();
    if (opts.check_every)
      next_check += std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::duration<double>(*opts.check_every));
    for (;;) {
      std::vector<pollfd> fds;
      for (auto& r : rings) fds.push_back({r->fd(), POLLIN, 0});
      (void)::poll(fds.data(), fds.size(), 20);
      drain();
      int ws = 0;
      for (pid_t p; (p = ::waitpid(-1, &ws, WNOHANG)) > 0;)
        if (p == root) status = ws;
      if (status && !cg.populated()) break;
      if (opts.check_every && std::chrono::steady_clock::now() >= next_check && cg.populated()) {
        // A cut is the tree at one moment, or none: read while a task still runs, it could
        // show a child whose fork the trace puts after the cut.
        if (cg.freeze(true)) snaps.push_back(read_snapshot(cg, monotonic_now()));
        else ++st.cuts_skipped;
        cg.freeze(false);
        next_check = std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                            std::chrono::duration<double>(*opts.check_every));
      }
    }
    drain();
  } catch (...) {
    std::signal(SIGINT, old_int);
    std::signal(SIGQUIT, old_quit);
    throw;
  }
  std::signal(SIGINT, old_int);
  std::signal(SIGQUIT, old_quit);
  st.exit_status = status ? shell_status(*status) : 1;
  if (kmem) {
    try {
      const auto k = kmem->read();
      st.kmem = ev_kmem{k.anon_vma_alloc, k.anon_vma_free, k.avc_alloc, k.avc_free};
    } catch (const std::exception& e) {
      ++st.not_traced[fmt::format("the kernel's anon_vma counts ({})", e.what())];
    }
  }
  convert_recording(static_cast<tid_t>(root), tps, std::move(items), std::move(snaps), w, st);
  return st;
}

}  // namespace rmapkit::replay
