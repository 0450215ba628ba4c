// The controller of the kernel back end: one agent process per scenario process, the
// machine-wide guards, and the report read back from /proc (docs/scenario-format.md,
// "Kernel back end").
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <ostream>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "kcheck/agent.h"
#include "kcheck/damon.h"
#include "kcheck/host_guards.h"
#include "kcheck/procfs.h"
#include "kcheck/thp_guard.h"
#include "kcheck/tracefs.h"
#include "rmapkit/kcheck/kernel.h"
#include "rmapkit/scenario/report.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25  // Linux 6.1; glibc 2.36's <sys/mman.h> lacks it
#endif

namespace rmapkit::kcheck {

using scenario::statement_error;
namespace sc = rmapkit::scenario;

namespace {

// ---- interruption ------------------------------------------------------------------

volatile sig_atomic_t g_signal = 0;

void on_signal(int signo) { g_signal = signo; }

struct interrupted {
  int signo;
};

/// A version 2 run that something behind the scenario's back may have changed
/// (thp_guard.h, moved()): its report would not be reproducible.
struct run_disturbed {
  std::string what;
};

void check_interrupt() {
  if (g_signal) throw interrupted{g_signal};
}

/// Catches SIGINT, SIGTERM, SIGHUP and SIGPIPE (a reader of the report went away) for the
/// run without SA_RESTART, so that a blocking call returns EINTR and the run unwinds
/// through its guards.
class signal_scope {
 public:
  signal_scope() {
    g_signal = 0;
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (std::size_t i = 0; i < std::size(_signals); ++i) ::sigaction(_signals[i], &sa, &_old[i]);
  }
  ~signal_scope() {
    for (std::size_t i = 0; i < std::size(_signals); ++i) ::sigaction(_signals[i], &_old[i], nullptr);
  }
  signal_scope(const signal_scope&) = delete;
  signal_scope& operator=(const signal_scope&) = delete;

 private:
  static constexpr int _signals[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
  struct sigaction _old[4]{};
};

std::system_error sys_error(const std::string& what, int err = errno) { return {err, std::generic_category(), what}; }

int prot_bits(sc::prot p) {
  switch (p) {
    case sc::prot::rw: return PROT_READ | PROT_WRITE;
    case sc::prot::r: return PROT_READ;
    case sc::prot::none: return PROT_NONE;
    case sc::prot::rx: return PROT_READ | PROT_EXEC;
    case sc::prot::rwx: return PROT_READ | PROT_WRITE | PROT_EXEC;
  }
  return PROT_NONE;
}

int madvise_bits(sc::advice a) {
  switch (a) {
    case sc::advice::dontneed: return MADV_DONTNEED;
    case sc::advice::mergeable: return MADV_MERGEABLE;
    case sc::advice::unmergeable: return MADV_UNMERGEABLE;
    case sc::advice::pageout: return MADV_PAGEOUT;
    case sc::advice::dontfork: return MADV_DONTFORK;
    case sc::advice::dofork: return MADV_DOFORK;
    case sc::advice::wipeonfork: return MADV_WIPEONFORK;
    case sc::advice::keeponfork: return MADV_KEEPONFORK;
    case sc::advice::dontdump: return MADV_DONTDUMP;
    case sc::advice::dodump: return MADV_DODUMP;
    case sc::advice::sequential: return MADV_SEQUENTIAL;
    case sc::advice::random: return MADV_RANDOM;
    case sc::advice::normal: return MADV_NORMAL;
    case sc::advice::free: return MADV_FREE;
    case sc::advice::cold: return MADV_COLD;
    case sc::advice::willneed: return MADV_WILLNEED;
    case sc::advice::remove: return MADV_REMOVE;
    case sc::advice::collapse: return MADV_COLLAPSE;
  }
  return -1;
}

/// The `report flags` bits of a frame from its /proc/kpageflags word.
std::uint8_t page_life(std::uint64_t kpageflags) {
  static constexpr std::pair<unsigned, sc::page_life> bits[] = {{KPF_REFERENCED, sc::page_life::referenced},
                                                                {KPF_DIRTY, sc::page_life::dirty},
                                                                {KPF_LRU, sc::page_life::lru},
                                                                {KPF_ACTIVE, sc::page_life::active},
                                                                {KPF_UNEVICTABLE, sc::page_life::unevictable},
                                                                {KPF_MLOCKED, sc::page_life::mlocked}};
  std::uint8_t out = 0;
  for (const auto& [kpf, to] : bits)
    if ((kpageflags >> kpf) & 1U) out = static_cast<std::uint8_t>(out | sc::bit(to));
  return out;
}

/// The report's smaps figures of a VMA read from /proc/PID/smaps.
sc::smaps_values smaps_of(const maps_entry& e) {
  sc::smaps_values out{};
  for (std::size_t i = 0; i < sc::SMAPS_FIELDS.size(); ++i) {
    auto it = e.smaps_kb.find(sc::SMAPS_FIELDS[i]);
    if (it == e.smaps_kb.end())
      throw statement_error(fmt::format("check: this kernel's smaps has no '{}' line", sc::SMAPS_FIELDS[i]));
    out[i] = it->second;
  }
  return out;
}

/// The report's KIND of a VMA, from its /proc/PID/maps path and offset.
std::string vma_kind(const maps_entry& e) {
  if (e.path.empty()) return "anon";
  if (e.path.rfind("/dev/zero", 0) == 0) return "shmem";  // MAP_SHARED|MAP_ANONYMOUS
  static const std::string memfd = fmt::format("/memfd:{}", MEMFD_NAME_PREFIX);
  if (e.path.rfind(memfd, 0) == 0) {
    auto name = e.path.substr(memfd.size());
    if (auto sp = name.find(' '); sp != std::string::npos) name.resize(sp);  // " (deleted)"
    return fmt::format("file:{}@{}", name, e.offset / PAGE_SIZE);
  }
  return "other:" + e.path;
}

std::uint64_t random_salt() {
  std::uint64_t s = 0;
  if (::getrandom(&s, sizeof s, 0) != sizeof s)
    s = static_cast<std::uint64_t>(::getpid()) * std::uint64_t{0x9e3779b97f4a7c15};
  return s;
}

// ---- agents ------------------------------------------------------------------------

struct agent {
  std::string name;
  pid_t pid = 0;
  unique_fd channel;
  unique_fd pidfd;
};

/// Waits until the process behind @pidfd has exited; its exit_mmap() has then finished.
void wait_exited(int pidfd, bool interruptible) {
  pollfd p{pidfd, POLLIN, 0};
  while (::poll(&p, 1, -1) < 0) {
    if (errno != EINTR) return;
    if (interruptible) check_interrupt();
  }
  siginfo_t info{};
  // Reap it when it is ours (spawned, or an orphan we adopted as subreaper).
  (void)::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &info, WEXITED | WNOHANG);
}

/// Whether a check of @prog prints smaps figures (`report smaps`, or --smaps).
bool prints_smaps(const sc::program& prog) {
  return std::ranges::any_of(prog.ops, [](const sc::op& o) {
    const auto* c = std::get_if<sc::op_check>(&o.body);
    return c != nullptr && c->smaps;
  });
}

// ---- the controller ----------------------------------------------------------------

class controller {
 public:
  controller(const sc::program& prog, std::ostream& out, std::ostream& err, const run_options& opts)
      : _prog(prog), _out(out), _err(err), _opts(opts), _salt(random_salt()) {
    ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    // A run killed before it could clean up left the machine tuned: any run puts it back
    // before it starts, under the lock, so as not to race a run that holds it.
    const bool smaps = prints_smaps(prog);
    if (opts.kmem_counts && opts.kernel_share)
      throw std::invalid_argument("kcheck::run: kmem_counts and kernel_share each need the run's trace instance");
    if (prog.needs_machine_lock || smaps || opts.kmem_counts || opts.kernel_share ||
        stale_leftovers_exist(opts.swap_dir)) {
      _lock.emplace(check_interrupt, lock_wait{opts.wait_for_lock, [this](const std::string& what) {
                                                 if (_opts.on_lock_wait) _opts.on_lock_wait(what);
                                                 else _err << "rmapkit kernel: " << what << '\n' << std::flush;
                                               }});
      remove_stale_leftovers(opts.swap_dir);
    }
    if (prog.needs_machine_lock) _ksm.emplace();
    // The tracer follows each agent from its spawn, and what it forks.
    if (opts.kmem_counts) _kmem.emplace();
    if (opts.kernel_share) _time.emplace();
    // DAMON's sampling would move accessed bits behind the run's back, and smaps prints
    // them (damon.h); with no kdamond running, no scheme acts either.
    if (smaps) _damon.emplace(damon_hold::monitoring);
    if (prog.needs_swap) {
      // Before the swap file exists: DAMON's schemes would swap out the scenario's
      // unmapped memfd pages (damon.h).
      if (!_damon) _damon.emplace(damon_hold::actions);
      // Twice what the scenario can hold at once: a swap device more than half full frees
      // swap cache early and changes `swapcache` flags.
      auto bytes = std::max<std::uint64_t>(64ULL << 20, 2 * prog.frame_bound() * PAGE_SIZE + (32ULL << 20));
      _swap.emplace(opts.swap_dir, bytes);
    }
    // Joined before any file is filled or agent spawned: pages are charged at allocation.
    if (prog.needs_reclaim || prog.needs_shrink) _memcg.emplace();
    _agents.resize(prog.process_names.size());
    _files.resize(prog.file_names.size());
  }

  ~controller() { reap_all(); }

  /// After the last statement: every process gone (their exits free their anon_vmas),
  /// then the kmem counts, if asked for.
  void finish() {
    reap_all();
    if (_thp_before) {
      // `reclaim` and `shrink` are memcg reclaim, counted as direct scans.
      std::vector<std::string> ours;
      if (_prog.needs_reclaim || _prog.needs_shrink) ours.emplace_back("pgscan_direct");
      if (auto m = moved(*_thp_before, read_thp_counters(), ours); !m.empty())
        throw run_disturbed{fmt::format("{}", fmt::join(m, ", "))};
    }
    if (_time) _time->stop();  // throws when events were lost: a share would be short
    if (!_kmem) return;
    auto counts = _kmem->read();
    for (const auto& [name, pid] : _followed)
      if (!_kmem->freed_any(pid))
        throw std::runtime_error(fmt::format(
            "kmem counts: process {} (pid {}) freed nothing as it exited: another process held its address "
            "space then (a reader of /proc/{}, such as ps or top) and tore it down later, untraced; the counts "
            "would be wrong: run again",
            name, pid, pid));
    if (_opts.on_kmem_counts) _opts.on_kmem_counts(counts);
    else _err << sc::format(counts) << std::flush;
  }

  controller(const controller&) = delete;
  controller& operator=(const controller&) = delete;

  /// Runs every op; @line follows the op being run, for the caller's error message.
  void execute(int& line) {
    for (const auto& o : _prog.ops) {
      if (_opts.before_statement) _opts.before_statement(static_cast<std::size_t>(&o - _prog.ops.data()));
      line = o.line;
      _line_of_current = o.line;
      check_interrupt();
      if (_opts.trace) _err << fmt::format("{}:{}: {}\n", _prog.file, o.line, o.text) << std::flush;
      check_agents_alive();
      lru_drain();
      _agent_ns.reset();
      const auto t0 = std::chrono::steady_clock::now();
      std::visit([&](const auto& body) { exec(body); }, o.body);
      const auto t1 = std::chrono::steady_clock::now();
      statement_timing timing{t1 - t0, _agent_ns, std::nullopt};
      // steady_clock is CLOCK_MONOTONIC, the tracer's clock.
      if (_time) timing.kernel = _time->take(sc::statement_kind(o), t0.time_since_epoch(), t1.time_since_epoch());
      if (_opts.on_statement) _opts.on_statement(o, timing);
    }
    check_agents_alive();
  }

 private:
  agent& live(sc::proc_id id) { return *_agents.at(id); }

  /// A scenario process that died behind our back (OOM killer, a stray kill) ends the run.
  void check_agents_alive() {
    for (const auto& a : _agents) {
      if (!a) continue;
      pollfd p{a->pidfd.get(), POLLIN, 0};
      if (::poll(&p, 1, 0) > 0) throw statement_error(fmt::format("process {} died unexpectedly", a->name));
    }
  }

  /// Sends a request to an agent and waits for its answer; returns the agent's errno.
  int request(sc::proc_id id, agent_request req, int fd = -1) {
    auto& a = live(id);
    if (req.op != agent_op::flush_tlb) req.thp |= thp_window();
    if (!send_request(a.channel.get(), req, fd))
      throw statement_error(fmt::format("process {} died unexpectedly", a.name));
    return await_reply(a).err;
  }

  agent_reply await_reply(agent& a) {
    agent_reply rep;
    for (;;) {
      if (recv_reply(a.channel.get(), rep)) {
        if (rep.ns) _agent_ns = _agent_ns.value_or(std::chrono::nanoseconds{0}) + std::chrono::nanoseconds(rep.ns);
        return rep;
      }
      if (errno == EINTR) {
        check_interrupt();
        continue;
      }
      throw statement_error(fmt::format("process {} died unexpectedly", a.name));
    }
  }

  /// A version 2 run's statements run with large folios allowed, and only they.
  [[nodiscard]] std::uint32_t thp_window() const { return _prog.thp ? AGENT_THP_WINDOW : 0; }

  void refused(const char* what, int err) {
    if (err) throw statement_error(fmt::format("{}: refused: {}", what, std::strerror(err)));
  }

  agent_request span_request(agent_op op, const sc::page_span& s) {
    agent_request r;
    r.op = op;
    r.addr = s.start.value;
    r.len = s.pages * PAGE_SIZE;
    r.index = s.index;
    return r;
  }

  /// A new agent on a fresh socket; @make_child creates the process and returns the
  /// descriptor for the agent's end to be closed here.
  void adopt(sc::proc_id id, unique_fd ours, pid_t pid) {
    agent a;
    a.name = _prog.process_names[id];
    a.channel = std::move(ours);
    agent_reply hello = await_reply(a);
    a.pid = hello.pid;
    if (pid && pid != a.pid) throw std::logic_error("agent pid mismatch");
    a.pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, a.pid, 0)));
    if (!a.pidfd) throw sys_error(fmt::format("pidfd_open of process {}", a.name));
    if (_kmem) _followed.emplace_back(a.name, a.pid);  // spawned ones are followed, forked ones follow their parent
    _agents[id] = std::move(a);
  }

  const std::string& agent_path() {
    if (_agent_path.empty()) {
      auto found = agent_executable();
      if (!found)
        throw statement_error(
            fmt::format("spawn: cannot find the agent executable rmapkit-agent; looked at {} "
                        "(set RMAPKIT_AGENT to its path)",
                        fmt::join(agent_candidates(), ", ")));
      _agent_path = std::move(*found);
    }
    return _agent_path;
  }

  static std::pair<unique_fd, unique_fd> channel_pair() {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) throw sys_error("socketpair");
    return {unique_fd(sv[0]), unique_fd(sv[1])};
  }

  // ---- statements ------------------------------------------------------------------

  void exec(const sc::op_spawn& o) {
    auto [ours, theirs] = channel_pair();
    pid_t pid = start_agent(agent_path().c_str(), theirs.get());
    if (pid < 0) throw sys_error("fork");
    theirs.reset();
    try {
      adopt(o.proc, std::move(ours), pid);
      if (_kmem) _kmem->follow(pid);
      if (_time) _time->follow(pid);
    } catch (const statement_error&) {
      throw statement_error(fmt::format("spawn: cannot start the agent {}", _agent_path));
    }
  }

  void exec(const sc::op_file& o) {
    const auto& name = _prog.file_names[o.file];
    unique_fd fd(::memfd_create(fmt::format("{}{}", MEMFD_NAME_PREFIX, name).c_str(), MFD_CLOEXEC));
    if (!fd) throw sys_error("memfd_create");
    std::vector<unsigned char> page(PAGE_SIZE);
    for (std::uint64_t i = 0; i < o.pages; ++i) {
      // Content unique to (file, page); key1 is above every line number.
      unique_page(page.data(), _salt, (std::uint64_t{1} << 32) + o.file, i);
      if (::pwrite(fd.get(), page.data(), PAGE_SIZE, static_cast<off_t>(i * PAGE_SIZE)) != PAGE_SIZE)
        throw sys_error(fmt::format("cannot fill file {}", name));
    }
    _files[o.file] = std::move(fd);
  }

  void exec(const sc::op_mmap& o) {
    agent_request r;
    r.op = agent_op::mmap;
    r.addr = o.start().value;
    r.len = o.pages * PAGE_SIZE;
    r.prot = prot_bits(o.prot);
    bool shared = o.kind == sc::map_kind::anon_shared || o.kind == sc::map_kind::file_shared;
    r.flags = shared ? MAP_SHARED : MAP_PRIVATE;
    if (o.fixed) r.flags |= MAP_FIXED;  // the agent maps MAP_FIXED_NOREPLACE otherwise
    if (o.noreserve) r.flags |= MAP_NORESERVE;
    if (o.huge) r.thp |= AGENT_THP_HUGE;
    int fd = -1;
    if (o.file) {
      fd = _files.at(*o.file).get();
      r.offset = o.offset * PAGE_SIZE;
    } else {
      r.flags |= MAP_ANONYMOUS;
    }
    refused("mmap", request(o.proc, r, fd));
  }

  void exec(const sc::op_read& o) { refused("read", request(o.proc, span_request(agent_op::read, o.span))); }

  void exec(const sc::op_write& o) {
    auto r = span_request(agent_op::write, o.span);
    r.value = o.value ? *o.value : -1;
    r.salt = _salt;
    r.line = static_cast<std::uint64_t>(_line_of_current);
    refused("write", request(o.proc, r));
  }

  void exec(const sc::op_fork& o) {
    auto [ours, theirs] = channel_pair();
    agent_request r;
    r.op = agent_op::fork;
    r.thp = thp_window();
    auto& parent = live(o.parent);
    if (!send_request(parent.channel.get(), r, theirs.get()))
      throw statement_error(fmt::format("process {} died unexpectedly", parent.name));
    theirs.reset();
    auto rep = await_reply(parent);
    refused("fork", rep.err);
    adopt(o.child, std::move(ours), rep.pid);
  }

  void exec(const sc::op_exit& o) {
    auto& a = live(o.proc);
    agent_request r;
    r.op = agent_op::exit;
    (void)send_request(a.channel.get(), r);
    wait_exited(a.pidfd.get(), true);
    _agents[o.proc].reset();
  }

  void exec(const sc::op_munmap& o) { refused("munmap", request(o.proc, span_request(agent_op::munmap, o.span))); }

  void exec(const sc::op_mprotect& o) {
    auto r = span_request(agent_op::mprotect, o.span);
    r.prot = prot_bits(o.prot);
    refused("mprotect", request(o.proc, r));
  }

  void exec(const sc::op_mremap_resize& o) {
    auto& a = live(o.proc);
    auto end = page_addr(o.base, o.old_pages);
    auto vmas = read_vmas(a.pid, o.base, vaddr_t{o.base.value + sc::SLOT_SIZE});
    if (vmas.size() != 1 || vmas[0].start != o.base || vmas[0].end != end)
      throw statement_error(fmt::format("mremap: the region is not one VMA covering pages 0 to {}", o.old_pages - 1));
    agent_request r;
    r.op = agent_op::mremap;
    r.addr = o.base.value;
    r.len = o.old_pages * PAGE_SIZE;
    r.new_len = o.new_pages * PAGE_SIZE;
    r.flags = 0;  // in place: no MREMAP_MAYMOVE
    refused("mremap", request(o.proc, r));
  }

  void exec(const sc::op_mremap_move& o) {
    auto& a = live(o.proc);
    // Every VMA of the region moves to the same offset from the new base.
    for (const auto& v : read_vmas(a.pid, o.old_base, vaddr_t{o.old_base.value + sc::SLOT_SIZE})) {
      agent_request r;
      r.op = agent_op::mremap;
      r.addr = v.start.value;
      r.len = r.new_len = v.end.value - v.start.value;
      r.new_addr = o.new_base.value + (v.start.value - o.old_base.value);
      r.flags = MREMAP_MAYMOVE | MREMAP_FIXED;
      refused("mremap", request(o.proc, r));
    }
  }

  void exec(const sc::op_madvise& o) {
    auto r = span_request(agent_op::madvise, o.span);
    r.flags = madvise_bits(o.advice);
    refused(fmt::format("madvise {}", sc::to_string(o.advice)).c_str(), request(o.proc, r));
    if (o.advice == sc::advice::pageout) wait_for_writeback();
  }

  /// Swap-out writes pages asynchronously; a fault on a page still under writeback keeps
  /// it in the swap cache (folio_free_swap() refuses), one that comes later does not. Wait
  /// until the machine has no page under writeback, so the next statement always sees
  /// the pages written.
  void wait_for_writeback() {
    using clock = std::chrono::steady_clock;
    auto deadline = clock::now() + std::chrono::seconds(30);
    for (;;) {
      auto meminfo = read_text("/proc/meminfo");
      auto at = meminfo.find("\nWriteback:");
      if (at == std::string::npos || std::stoull(meminfo.substr(at + 11)) == 0) return;
      if (clock::now() > deadline) throw statement_error("swap writeback did not finish within 30 s");
      check_interrupt();
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }

  void exec(const sc::op_mlock& o) { refused("mlock", request(o.proc, span_request(agent_op::mlock, o.span))); }
  void exec(const sc::op_munlock& o) { refused("munlock", request(o.proc, span_request(agent_op::munlock, o.span))); }

  void exec(const sc::op_ksm& o) {
    // ksmd sleeps while no mm is registered with KSM, and then full_scans never moves;
    // with no mergeable VMA in the scenario nothing of ours can merge anyway.
    bool any = false;
    for (const auto& a : _agents) {
      if (!a) continue;
      for (const auto& v : read_vmas(a->pid, sc::slot_start(0), sc::slot_start(_prog.slot_count), true))
        any = any || v.mergeable;
    }
    if (any) _ksm->run_to_fixpoint(check_interrupt, o.prune);
    if (!_opts.ksm_counters) return;
    if (_opts.on_ksm_counters) _opts.on_ksm_counters(_line_of_current, ksm_guard::counters());
    else _err << sc::format(_line_of_current, ksm_guard::counters()) << std::flush;
  }

  void exec(const sc::op_reclaim&);
  void exec(const sc::op_clear_refs& o) {
    const auto path = fmt::format("/proc/{}/clear_refs", live(o.proc).pid);
    if (int e = write_text(path, std::to_string(static_cast<int>(o.type))); e != 0)
      throw statement_error(fmt::format("clear_refs: cannot write {}: {}", path, std::strerror(e)));
    flush_tlb(o.proc);
  }
  /// After accessed bits were cleared: the process's next touches must set them again,
  /// which a cached translation would not (see the agent's flush_tlb()).
  void flush_tlb(sc::proc_id p) {
    agent_request r;
    r.op = agent_op::flush_tlb;
    if (int err = request(p, r))
      throw statement_error(
          fmt::format("cannot flush the TLB of process {}: {}", _prog.process_names[p], std::strerror(err)));
  }
  void exec(const sc::op_report&) {}  // it changes what later checks print: op_check::smaps, flags
  void exec(const sc::op_thp& o) {
    _thp.emplace(o);
    _thp_before = read_thp_counters();
  }
  void exec(const sc::op_shrink&) {
    lru_drain();
    _memcg->shrink_pass();
  }
  void exec(const sc::op_check& o);

  /// A present page of the scenario, as the snapshot found it.
  struct present_page {
    std::string where;  // "P A[3]"
    pfn_t pfn;
    bool locked_vma;
  };
  std::vector<present_page> present_pages(bool with_locks);
  /// The report of @c, or nothing when a page was caught under migration.
  std::optional<sc::report_block> snapshot(const sc::op_check& c);
  void reap_all() {
    for (auto& a : _agents) {
      if (!a) continue;
      ::syscall(SYS_pidfd_send_signal, a->pidfd.get(), SIGKILL, nullptr, 0);
      wait_exited(a->pidfd.get(), false);
    }
    _agents.clear();
    _files.clear();
  }

  const sc::program& _prog;
  std::ostream& _out;
  std::ostream& _err;
  const run_options& _opts;
  std::uint64_t _salt;
  int _line_of_current = 0;
  std::optional<std::chrono::nanoseconds> _agent_ns;  // the current statement's, for on_statement
  std::string _agent_path;                            // found at the first spawn
  cpu_pin_guard _pin;
  kpage_reader _kpage;
  // Declared in acquisition order; destroyed in reverse after ~controller() killed the agents.
  std::optional<machine_lock> _lock;
  std::optional<kmem_tracer> _kmem;
  std::optional<time_tracer> _time;
  std::vector<std::pair<std::string, pid_t>> _followed;  // every process the kmem tracer followed
  std::optional<thp_guard> _thp;
  std::optional<thp_counters> _thp_before;  // at the `thp` line
  std::optional<ksm_guard> _ksm;
  std::optional<damon_guard> _damon;
  std::optional<swap_guard> _swap;
  std::optional<memcg_guard> _memcg;
  std::vector<unique_fd> _files;
  std::vector<std::optional<agent>> _agents;
};

std::vector<controller::present_page> controller::present_pages(bool with_locks) {
  std::vector<present_page> out;
  for (std::size_t id = 0; id < _agents.size(); ++id) {
    const auto& a = _agents[id];
    if (!a) continue;
    // Regions live only in the slot area.
    for (const auto& v : read_vmas(a->pid, sc::slot_start(0), sc::slot_start(_prog.slot_count), with_locks)) {
      auto n = pages_between(v.start, v.end);
      auto pm = read_pagemap(a->pid, v.start, n);
      for (std::uint64_t i = 0; i < n; ++i) {
        if (!(pm[i] & PM_PRESENT)) continue;
        pfn_t pfn{pm[i] & PM_PFN_MASK};
        if (_kpage.flags(pfn) & (std::uint64_t{1} << KPF_ZERO_PAGE)) continue;
        out.push_back({fmt::format("{} at {}", a->name, page_addr(v.start, i)), pfn, v.locked});
      }
    }
  }
  return out;
}

void controller::exec(const sc::op_reclaim&) {
  for (const auto& p : present_pages(false))
    if (_kpage.flags(p.pfn) & (std::uint64_t{1} << KPF_KSM))
      throw statement_error(fmt::format("reclaim: refused while KSM pages exist ({})", p.where));
  std::size_t last = ~std::size_t{0};
  int stuck = 0;
  // Repeat {clear referenced bits, force_empty, limit shrink} until every page that can
  // be reclaimed is gone from the page tables: pages mapped by several processes start
  // on the active list and need several passes. memory.force_empty alone leaves a page that
  // two or more young PTEs referenced (the first scan activates it and the active list is not
  // aged again); clear_refs clears those young bits. The memcg's usage counters lag, so the
  // loop ends on what pagemap shows, not on memory.usage_in_bytes.
  for (;;) {
    for (const auto& a : _agents)
      if (a) (void)write_text(fmt::format("/proc/{}/clear_refs", a->pid), "1");
    lru_drain();
    _memcg->reclaim_pass();
    check_interrupt();
    auto pages = present_pages(true);
    std::set<std::uint64_t> locked;  // an mlocked frame stays mapped in every sharer
    for (const auto& p : pages)
      if (p.locked_vma) locked.insert(p.pfn.value);
    std::size_t left = 0;
    for (const auto& p : pages) left += locked.count(p.pfn.value) ? 0U : 1U;
    if (left == 0) {
      // Page-cache and swap-cache pages that no process maps are invisible to the check
      // above; a pass whose mapped pages all went may have stopped before them.
      for (int extra = 0; extra < 2; ++extra) {
        lru_drain();
        _memcg->reclaim_pass();
      }
      wait_for_writeback();
      // The pages reclaim keeps had their accessed bits cleared.
      for (std::size_t id = 0; id < _agents.size(); ++id)
        if (_agents[id]) flush_tlb(static_cast<sc::proc_id>(id));
      return;
    }
    stuck = left < last ? 0 : stuck + 1;
    last = left;
    if (stuck >= 40) throw statement_error(fmt::format("reclaim: {} pages could not be reclaimed", left));
    // Pages briefly held elsewhere (isolated by compaction, in flight) come back: wait a
    // little longer each time no progress is made.
    if (stuck > 0) std::this_thread::sleep_for(std::chrono::milliseconds(2 * stuck));
  }
}

std::optional<sc::report_block> controller::snapshot(const sc::op_check& c) {
  sc::report_block b{c.label, {}};
  bool transient = false;
  for (const auto& p : c.processes) {
    const auto& a = live(p.proc);
    for (const auto& r : p.regions) {
      sc::report_region rr{p.name, r.name, {}, {}};
      auto vmas = read_vmas(a.pid, r.base, vaddr_t{r.base.value + sc::SLOT_SIZE}, c.smaps);
      for (const auto& v : vmas) {
        rr.vmas.push_back(
            {pages_between(r.base, v.start), pages_between(r.base, v.end), v.perms, vma_kind(v), std::nullopt});
        if (c.smaps) rr.vmas.back().smaps = smaps_of(v);
      }
      for (const auto& v : vmas) {
        auto n = pages_between(v.start, v.end);
        auto pm = read_pagemap(a.pid, v.start, n);
        // Version 2 only: a version 1 report is read exactly as it always was.
        const auto pmds = _prog.thp ? read_pmd_mapped(a.pid, v.start, v.end) : decltype(read_pmd_mapped({}, {}, {})){};
        auto pmd_at = pmds.begin();
        for (std::uint64_t i = 0; i < n; ++i) {
          sc::report_page pg;
          pg.index = pages_between(r.base, v.start) + i;
          const vaddr_t addr = page_addr(v.start, i);
          while (pmd_at != pmds.end() && pmd_at->second <= addr) ++pmd_at;
          pg.pmd = pmd_at != pmds.end() && pmd_at->first <= addr;
          auto e = pm[i];
          if (e & PM_PRESENT) {
            pfn_t pfn{e & PM_PFN_MASK};
            auto fl = _kpage.flags(pfn);
            auto bit = [fl](unsigned kpf) { return (fl >> kpf) & 1; };
            if (bit(KPF_ZERO_PAGE)) {
              pg.state = sc::report_page::state::zero;
            } else {
              if (_prog.thp && (bit(KPF_COMPOUND_HEAD) || bit(KPF_COMPOUND_TAIL))) {
                const auto [head, order] = _kpage.folio_of(pfn);
                if (order > 0) pg.folio = sc::report_folio{head.value, order, pfn.value - head.value};
              }
              pg.state = sc::report_page::state::frame;
              pg.id = pfn.value;
              pg.count = _kpage.count(pfn);
              std::uint8_t f = 0;
              if (bit(KPF_ANON)) f = f | sc::page_flag::anon;
              if (bit(KPF_KSM)) f = f | sc::page_flag::ksm;
              // Bit 34 means PG_anon_exclusive only on anonymous pages.
              if (bit(KPF_ANON) && bit(KPF_ANON_EXCLUSIVE)) f = f | sc::page_flag::excl;
              if (bit(KPF_SWAPCACHE)) f = f | sc::page_flag::swapcache;
              pg.flags = f;
              if (c.flags) pg.life = page_life(fl);
            }
          } else if (e & PM_SWAP) {
            if ((e & ((1U << PM_SWAP_TYPE_BITS) - 1)) >= FIRST_SPECIAL_SWAP_TYPE) transient = true;
            pg.state = sc::report_page::state::swap;
            pg.id = e & PM_PFN_MASK;
          } else {
            continue;
          }
          rr.pages.push_back(pg);
        }
      }
      b.regions.push_back(std::move(rr));
    }
  }
  if (transient) return std::nullopt;
  return b;
}

void controller::exec(const sc::op_check& c) {
  // A page under migration (background compaction) shows a migration entry for a moment:
  // take the snapshot again until none is seen.
  for (int attempt = 0; attempt < 500; ++attempt) {
    if (auto b = snapshot(c)) {
      if (_opts.on_check) _opts.on_check(*b);
      else _out << sc::format(*b) << std::flush;
      return;
    }
    check_interrupt();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  throw statement_error("check: pages stayed under migration for 5 s");
}

}  // namespace

std::optional<std::string> missing_privileges() {
  const char* need = "run it as root: PFNs in /proc/PID/pagemap and /proc/kpagecount, /proc/kpageflags are root-only";
  if (::geteuid() != 0) return fmt::format("not root; {}", need);
  try {
    kpage_reader probe;
  } catch (const std::system_error& e) {
    return fmt::format("{} ({}); {}", e.what(), e.code().message(), need);
  }
  if (own_pfn_probe() == 0) return fmt::format("/proc/self/pagemap shows no PFNs (CAP_SYS_ADMIN missing); {}", need);
  return std::nullopt;
}

namespace {

/// Raises the open-file limit to its hard limit: the runner holds every file's memfd and a
/// channel and a pidfd for each live process, more than the usual soft limit of 1024 allows.
/// Why the scenario would still run out of descriptors, or nothing.
std::optional<std::string> open_files_short(const sc::program& prog) {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return std::nullopt;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &rl);
    (void)::getrlimit(RLIMIT_NOFILE, &rl);
  }
  const std::uint64_t need = prog.file_names.size() + 2 * prog.live_process_peak + 64;
  if (rl.rlim_cur != RLIM_INFINITY && need > rl.rlim_cur)
    return fmt::format(
        "the scenario needs about {} open files (one a file, two a live process), more than "
        "RLIMIT_NOFILE allows ({})",
        need, rl.rlim_cur);
  return std::nullopt;
}

/// How often a version 2 run is tried when the counters say something else moved its memory.
constexpr int MAX_DISTURBED_RUNS = 3;

/// The reports, KSM counters and kmem counts of a run, held back until the run is known
/// to be undisturbed, then given to @opts' sinks (or the streams) in order.
class held_output {
 public:
  explicit held_output(const run_options& opts) : _opts(opts), _held(opts) {
    _held.on_check = [this](const sc::report_block& b) { _items.emplace_back(b); };
    _held.on_ksm_counters = [this](int l, const sc::ksm_counters& k) { _items.emplace_back(std::pair{l, k}); };
    _held.on_kmem_counts = [this](const sc::kmem_counts& k) { _items.emplace_back(k); };
  }
  [[nodiscard]] const run_options& options() const { return _held; }
  void clear() { _items.clear(); }
  void release(std::ostream& out, std::ostream& err) {
    for (const auto& item : _items) {
      if (const auto* b = std::get_if<sc::report_block>(&item)) {
        if (_opts.on_check) _opts.on_check(*b);
        else out << sc::format(*b) << std::flush;
      } else if (const auto* k = std::get_if<std::pair<int, sc::ksm_counters>>(&item)) {
        if (_opts.on_ksm_counters) _opts.on_ksm_counters(k->first, k->second);
        else err << sc::format(k->first, k->second) << std::flush;
      } else if (const auto* m = std::get_if<sc::kmem_counts>(&item)) {
        if (_opts.on_kmem_counts) _opts.on_kmem_counts(*m);
        else err << sc::format(*m) << std::flush;
      }
    }
    _items.clear();
  }

 private:
  const run_options& _opts;
  run_options _held;
  std::vector<std::variant<sc::report_block, std::pair<int, sc::ksm_counters>, sc::kmem_counts>> _items;
};

}  // namespace

std::optional<std::string> resource_cap_exceeded(const sc::program& prog) {
  if (prog.frame_bound() > MAX_RUN_PAGES)
    return fmt::format(
        "the scenario can hold {} pages ({} MiB) at once, more than the kernel back end allows ({} "
        "pages, {} MiB); --allow-large runs it all the same",
        prog.frame_bound(), prog.frame_bound() * PAGE_SIZE >> 20, MAX_RUN_PAGES, MAX_RUN_PAGES * PAGE_SIZE >> 20);
  if (prog.live_process_peak > MAX_RUN_PROCESSES)
    return fmt::format(
        "the scenario has {} processes alive at once, more than the kernel back end allows ({}); "
        "--allow-large runs it all the same",
        prog.live_process_peak, MAX_RUN_PROCESSES);
  return std::nullopt;
}

run_result run(const sc::program& prog, std::ostream& out, std::ostream& err, const run_options& opts) {
  if (auto why = opts.allow_large ? std::nullopt : resource_cap_exceeded(prog)) {
    err << sc::diag{prog.file, 0, *why}.str() << '\n';
    return {sc::EXIT_SCENARIO_ERROR, 0};
  }
  if (auto why = open_files_short(prog)) {
    err << sc::diag{prog.file, 0, *why}.str() << '\n';
    return {sc::EXIT_SCENARIO_ERROR, 0};
  }
  if (auto why = missing_privileges()) {
    err << "rmapkit kernel: " << *why << '\n';
    return {sc::EXIT_SCENARIO_ERROR, 0};
  }
  signal_scope signals;
  int line = 0;
  // A version 2 run is judged only at its end (run_disturbed): what it prints is held
  // until then, so that a disturbed run can be run again without printing twice.
  held_output held(opts);
  const run_options& used = prog.thp ? held.options() : opts;
  auto fail = [&](const std::string& msg) {
    held.release(out, err);
    out << std::flush;
    err << sc::diag{prog.file, line, msg}.str() << '\n';
    return run_result{sc::EXIT_SCENARIO_ERROR, 0};
  };
  try {
    for (int attempt = 1;; ++attempt) {
      try {
        controller c(prog, out, err, used);
        c.execute(line);
        c.finish();
        break;
      } catch (const run_disturbed& d) {
        if (attempt == MAX_DISTURBED_RUNS) {
          err << fmt::format(
              "{}: the kernel's run was disturbed behind the scenario's back {} times (last: {}): its report "
              "would not be reproducible, so none is printed; run it again on a quieter machine\n",
              prog.file, attempt, d.what);
          return {EXIT_MACHINE_BUSY, 0};
        }
        held.clear();
        line = 0;
      }
    }
    held.release(out, err);
    check_interrupt();  // a signal during the last statement (SIGPIPE from printing it)
  } catch (const statement_error& e) {
    return fail(e.what());
  } catch (const lock_busy& e) {
    err << "rmapkit kernel: " << e.what() << '\n';
    return {EXIT_MACHINE_BUSY, 0};
  } catch (const interrupted& i) {
    if (i.signo != SIGPIPE) held.release(out, err);  // what a version 1 run has printed by now
    out << std::flush;
    // A closed output pipe (`| head`) is an ordinary end for a filter: clean up quietly.
    if (i.signo == SIGPIPE) return {128 + i.signo, i.signo};
    err << fmt::format("rmapkit kernel: interrupted by {}; everything the run changed was restored\n",
                       ::sigabbrev_np(i.signo) ? ::sigabbrev_np(i.signo) : "a signal");
    return {128 + i.signo, i.signo};
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  return {0, 0};
}

}  // namespace rmapkit::kcheck
