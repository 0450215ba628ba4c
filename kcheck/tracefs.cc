#include "kcheck/tracefs.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "kcheck/procfs.h"
#include "rmapkit/kcheck/kernel.h"

namespace rmapkit::kcheck {

namespace {

constexpr const char* TRACEFS = "/sys/kernel/tracing";
constexpr const char* INSTANCE_PREFIX = "rmapkit-";
constexpr const char* ALLOC = "events/kmem/kmem_cache_alloc";
constexpr const char* FREE = "events/kmem/kmem_cache_free";

/// The value after "key" up to the next space, '+' (a call site's offset) or line end.
std::string_view field(std::string_view line, std::string_view key) {
  auto at = line.find(key);
  if (at == std::string_view::npos) return {};
  auto v = line.substr(at + key.size());
  return v.substr(0, v.find_first_of(" +\n"));
}

bool tracefs_mounted() { return exists(std::string(TRACEFS) + "/instances"); }

/// The pid of a trace line's task ("  comm-PID  [CPU] ..."), or 0.
int task_pid(std::string_view line) {
  auto task = line.substr(0, line.find(" ["));
  auto dash = task.rfind('-');
  if (dash == std::string_view::npos) return 0;
  int pid = 0;
  for (char c : task.substr(dash + 1))
    if (c >= '0' && c <= '9') pid = pid * 10 + (c - '0');
  return pid;
}

/// A run that mounts tracefs says so in a record (RECORD_DIR/MOUNT_RECORD_PREFIX<pid>)
/// first, so that the next run unmounts it when this one is killed before it could.
constexpr const char* RECORD_DIR = "/tmp";
constexpr const char* MOUNT_RECORD_PREFIX = "rmapkit-tracefs-";

std::string mount_record() { return fmt::format("{}/{}{}", RECORD_DIR, MOUNT_RECORD_PREFIX, ::getpid()); }

/// The mount records of runs that are gone.
std::vector<std::string> stale_mount_records() {
  std::vector<std::string> out;
  for (const auto& name : list_dir(RECORD_DIR)) {
    const pid_t pid = pid_suffix(name, MOUNT_RECORD_PREFIX);
    const std::string path = fmt::format("{}/{}", RECORD_DIR, name);
    if (pid > 0 && !pid_alive(pid) && own_regular_file(path)) out.push_back(path);
  }
  return out;
}

}  // namespace

bool stale_trace_instances_exist() {
  if (!stale_mount_records().empty()) return true;
  if (!tracefs_mounted()) return false;
  for (const auto& name : list_dir(std::string(TRACEFS) + "/instances"))
    if (pid_t pid = pid_suffix(name, INSTANCE_PREFIX); pid > 0 && !pid_alive(pid)) return true;
  return false;
}

void remove_stale_trace_instances() {
  if (tracefs_mounted()) {
    const std::string dir = std::string(TRACEFS) + "/instances";
    for (const auto& name : list_dir(dir)) {
      const pid_t pid = pid_suffix(name, INSTANCE_PREFIX);
      if (pid > 0 && !pid_alive(pid)) ::rmdir((dir + "/" + name).c_str());
    }
  }
  // A killed run mounted tracefs: unmount it, unless someone has started using it since
  // (then umount fails with EBUSY and it stays, as theirs).
  for (const auto& record : stale_mount_records()) {
    if (tracefs_mounted()) (void)::umount(TRACEFS);
    ::unlink(record.c_str());
  }
}

trace_instance::trace_instance() {
  if (!tracefs_mounted()) {
    write_record_file(mount_record(), std::string(TRACEFS) + "\n");
    if (::mount("nodev", TRACEFS, "tracefs", 0, nullptr) != 0) {
      ::unlink(mount_record().c_str());
      throw std::runtime_error(fmt::format("cannot mount tracefs on {}", TRACEFS));
    }
    _mounted = true;
  }
  try {
    // A private instance: its buffer, events, filters and pid list are ours alone, and
    // removing it undoes them all.
    _dir = fmt::format("{}/instances/{}{}", TRACEFS, INSTANCE_PREFIX, ::getpid());
    if (::mkdir(_dir.c_str(), 0700) != 0) throw std::runtime_error(fmt::format("cannot create {}", _dir));
    _created = true;
    set("tracing_on", "0");
    set("buffer_size_kb", "65536");
    set("options/event-fork", "1");
  } catch (...) {
    remove();
    throw;
  }
}

void trace_instance::set(const std::string& file, const std::string& value) {
  auto path = _dir + "/" + file;
  if (int e = write_text(path, value))
    throw std::runtime_error(fmt::format("cannot write {} to {}: errno {}", value, path, e));
}

bool trace_instance::has(const std::string& file) const { return exists(_dir + "/" + file); }

void trace_instance::enable(const std::string& event_dir, const std::string& filter) {
  if (!has(event_dir)) throw std::runtime_error(fmt::format("the kernel has no {} tracepoint", event_dir));
  if (!filter.empty()) set(event_dir + "/filter", filter);
  _enabled.push_back(event_dir);
  set(event_dir + "/enable", "1");
}

void trace_instance::follow(int pid) {
  set("set_event_pid", std::to_string(pid));  // a plain write appends to the list
  set("tracing_on", "1");                     // nothing is recorded before the first agent
}

void trace_instance::stop_and_check_lost(std::string_view what) {
  (void)write_text(_dir + "/tracing_on", "0");
  for (const auto& cpu : list_dir(_dir + "/per_cpu")) {
    auto stats = read_text(_dir + "/per_cpu/" + cpu + "/stats");
    for (std::string_view key : {"overrun: ", "dropped events: "})
      if (auto lost = field(stats, key); !lost.empty() && lost != "0")
        throw std::runtime_error(fmt::format("{} tracing lost {} events on {}", what, lost, cpu));
  }
}

void trace_instance::remove() {
  if (_created) {
    (void)write_text(_dir + "/tracing_on", "0");
    for (const auto& e : _enabled) (void)write_text(_dir + "/" + e + "/enable", "0");
    ::rmdir(_dir.c_str());
    _created = false;
  }
  if (_mounted) {
    ::umount(TRACEFS);
    ::unlink(mount_record().c_str());
    _mounted = false;
  }
}

trace_instance::~trace_instance() { remove(); }

kmem_tracer::kmem_tracer() {
  _trace.enable(ALLOC,
                "call_site.function == __anon_vma_prepare || call_site.function == anon_vma_fork || "
                "call_site.function == anon_vma_clone");
  _trace.enable(FREE, "call_site.function == unlink_anon_vmas || call_site.function == __put_anon_vma");
}

scenario::kmem_counts kmem_tracer::read() {
  _trace.stop_and_check_lost("kmem");
  scenario::kmem_counts k;
  std::ifstream in(_trace.dir() + "/trace");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("#")) continue;
    const bool alloc = line.find("kmem_cache_alloc:") != std::string::npos;
    const bool free = line.find("kmem_cache_free:") != std::string::npos;
    if (!alloc && !free) continue;
    auto name = field(line, "name=");
    if (name.empty()) throw std::runtime_error("kmem trace line without a cache name: " + line);
    // anon_vma's cache has a constructor, so it is never merged and keeps its name.
    const bool av = name == "anon_vma";
    if (alloc) (av ? k.anon_vma_alloc : k.avc_alloc)++;
    else (av ? k.anon_vma_free : k.avc_free)++;
    if (free) _freers.insert(task_pid(line));
  }
  return k;
}

// ---- the kernel's share of a statement's time ---------------------------------------

namespace {

/// The statement kinds timed by their system calls, and those calls' numbers: one table for
/// syscalls_of() and for the tracepoints' filter.
struct kind_syscalls {
  std::string_view kind;
  std::vector<int> nrs;
};
const std::vector<kind_syscalls>& syscall_kinds() {
  static const std::vector<kind_syscalls> table = {
      {"mmap", {SYS_mmap}},
      {"munmap", {SYS_munmap}},
      {"mprotect", {SYS_mprotect}},
      {"madvise", {SYS_madvise}},
      {"mremap", {SYS_mremap}},
      {"mremap-move", {SYS_mremap}},
      {"mlock", {SYS_mlock, SYS_mlock2}},
      {"munlock", {SYS_munlock}},
#ifdef SYS_fork
      {"fork", {SYS_clone, SYS_clone3, SYS_fork}},
#else
      {"fork", {SYS_clone, SYS_clone3}},
#endif
  };
  return table;
}

/// Every syscall number some statement kind is measured by: the raw_syscalls filter.
std::string syscall_filter() {
  std::set<int> ids;
  for (const auto& k : syscall_kinds()) ids.insert(k.nrs.begin(), k.nrs.end());
  std::string f;
  for (int id : ids) f += fmt::format("{}id == {}", f.empty() ? "" : " || ", id);
  return f;
}

}  // namespace

std::vector<int> time_tracer::syscalls_of(std::string_view kind) {
  for (const auto& k : syscall_kinds())
    if (k.kind == kind) return k.nrs;
  return {};
}

bool kernel_share_measures(std::string_view kind) { return time_tracer::measures(kind); }

time_tracer::time_tracer() {
  // The clock of steady_clock, so that a statement's window selects its spans.
  _trace.set("trace_clock", "mono");
  const auto ids = syscall_filter();
  _trace.enable("events/raw_syscalls/sys_enter", ids);
  _trace.enable("events/raw_syscalls/sys_exit", ids);
  _trace.enable("events/mmap_lock/mmap_lock_start_locking");
  _trace.enable("events/mmap_lock/mmap_lock_released");
  _trace.enable("events/sched/sched_process_exit");
  const auto pipe = _trace.dir() + "/trace_pipe";
  _pipe.reset(::open(pipe.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!_pipe) throw std::runtime_error(fmt::format("cannot open {}: errno {}", pipe, errno));
}

std::optional<std::chrono::nanoseconds> time_tracer::take(std::string_view kind, std::chrono::nanoseconds start,
                                                          std::chrono::nanoseconds end) {
  std::string text = std::exchange(_pending, {});
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(_pipe.get(), buf, sizeof buf);
    if (n > 0) {
      text.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN) throw std::runtime_error(fmt::format("reading trace_pipe: errno {}", errno));
    break;
  }
  // A line the kernel had not finished handing over waits for the next call.
  const std::size_t complete = text.rfind('\n') + 1;  // npos + 1 == 0: no line is complete
  _pending = text.substr(complete);
  text.resize(complete);
  if (!measures(kind)) return std::nullopt;
  const auto spans = parse_trace_spans(text, syscalls_of(kind), start, end);
  const auto& mine = kind == "exit" ? spans.exit_mmaps : spans.syscalls;
  if (mine.empty()) return std::nullopt;
  std::chrono::nanoseconds sum{0};
  for (auto d : mine) sum += d;
  return sum;
}

namespace {

/// One parsed trace line: "  comm-PID  [CPU] FLAGS  SECONDS.MICROS: EVENT: PAYLOAD".
struct trace_event {
  int pid = 0;
  std::chrono::nanoseconds at{0};
  std::string_view name, payload;
};

std::optional<trace_event> parse_event(std::string_view line) {
  const auto cpu_end = line.find("] ");
  if (cpu_end == std::string_view::npos) return std::nullopt;
  const auto ts_end = line.find(": ", cpu_end);
  if (ts_end == std::string_view::npos) return std::nullopt;
  const auto ts_begin = line.rfind(' ', ts_end) + 1;
  const auto ts = line.substr(ts_begin, ts_end - ts_begin);
  const auto dot = ts.find('.');
  if (dot == std::string_view::npos || ts.size() - dot - 1 != 6) return std::nullopt;
  std::uint64_t sec = 0, usec = 0;
  for (char c : ts.substr(0, dot)) {
    if (c < '0' || c > '9') return std::nullopt;
    sec = sec * 10 + static_cast<std::uint64_t>(c - '0');
  }
  for (char c : ts.substr(dot + 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    usec = usec * 10 + static_cast<std::uint64_t>(c - '0');
  }
  trace_event e;
  e.pid = task_pid(line);
  e.at = std::chrono::seconds(sec) + std::chrono::microseconds(usec);
  auto rest = line.substr(ts_end + 2);
  const auto colon = rest.find(':');
  e.name = rest.substr(0, colon);
  e.payload = colon == std::string_view::npos ? std::string_view{} : rest.substr(colon + 1);
  return e;
}

/// The syscall number of a sys_enter or sys_exit payload (" NR 56 (...)", " NR 56 = 0").
int syscall_nr(std::string_view payload) {
  auto v = field(payload, "NR ");
  int nr = 0;
  for (char c : v) nr = nr * 10 + (c - '0');
  return nr;
}

/// An exiting process's mmap_lock history: exit_mmap() is its last write lock, begun by
/// the read lock before it.
struct exit_state {
  std::optional<std::chrono::nanoseconds> read_start, span_start;
  std::optional<std::pair<std::chrono::nanoseconds, std::chrono::nanoseconds>> span;
};

}  // namespace

trace_spans parse_trace_spans(std::string_view text, const std::vector<int>& syscalls, std::chrono::nanoseconds start,
                              std::chrono::nanoseconds end) {
  trace_spans out;
  std::map<int, std::pair<int, std::chrono::nanoseconds>> in_syscall;  // pid -> (nr, entry)
  std::map<int, exit_state> exiting;
  const auto inside = [&](std::chrono::nanoseconds a, std::chrono::nanoseconds b) { return a >= start && b <= end; };
  while (!text.empty()) {
    const auto nl = text.find('\n');
    const auto line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    const auto e = parse_event(line);
    if (!e) continue;
    if (e->name == "sys_enter") {
      in_syscall[e->pid] = {syscall_nr(e->payload), e->at};
    } else if (e->name == "sys_exit") {
      auto it = in_syscall.find(e->pid);
      const int nr = syscall_nr(e->payload);
      if (it == in_syscall.end() || it->second.first != nr) continue;  // a fork's child returns too
      if (std::find(syscalls.begin(), syscalls.end(), nr) != syscalls.end() && inside(it->second.second, e->at))
        out.syscalls.push_back(e->at - it->second.second);
      in_syscall.erase(it);
    } else if (e->name == "sched_process_exit") {
      exiting[e->pid] = {};
    } else if (auto x = exiting.find(e->pid); x != exiting.end()) {
      const bool write = e->payload.find("write=true") != std::string_view::npos;
      auto& s = x->second;
      if (e->name == "mmap_lock_start_locking") {
        if (write) s.span_start = s.read_start.value_or(e->at);
        else s.read_start = e->at;
      } else if (e->name == "mmap_lock_released" && write && s.span_start) {
        s.span = {*s.span_start, e->at};
      }
    }
  }
  for (const auto& [pid, s] : exiting)
    if (s.span && inside(s.span->first, s.span->second)) out.exit_mmaps.push_back(s.span->second - s.span->first);
  return out;
}

}  // namespace rmapkit::kcheck
