#include "kcheck/tracefs.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <stdexcept>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "kcheck/procfs.h"

namespace rmapkit::kcheck {

namespace {

constexpr const char* TRACEFS = "/sys/kernel/tracing";
constexpr const char* INSTANCE_PREFIX = "rmapkit-";
constexpr const char* ALLOC = "events/kmem/kmem_cache_alloc/";
constexpr const char* FREE = "events/kmem/kmem_cache_free/";

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

kmem_tracer::kmem_tracer() {
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
    if (!exists(_dir + "/" + ALLOC)) throw std::runtime_error("the kernel has no kmem:kmem_cache_alloc tracepoint");
    set("tracing_on", "0");
    set("buffer_size_kb", "65536");
    set("options/event-fork", "1");
    set(std::string(ALLOC) + "filter",
        "call_site.function == __anon_vma_prepare || call_site.function == anon_vma_fork || "
        "call_site.function == anon_vma_clone");
    set(std::string(FREE) + "filter", "call_site.function == unlink_anon_vmas || call_site.function == __put_anon_vma");
    set(std::string(ALLOC) + "enable", "1");
    set(std::string(FREE) + "enable", "1");
  } catch (...) {
    remove();
    throw;
  }
}

void kmem_tracer::set(const std::string& file, const std::string& value) {
  auto path = _dir + "/" + file;
  if (int e = write_text(path, value))
    throw std::runtime_error(fmt::format("cannot write {} to {}: errno {}", value, path, e));
}

void kmem_tracer::follow(int pid) {
  set("set_event_pid", std::to_string(pid));  // a plain write appends to the list
  set("tracing_on", "1");                     // nothing is recorded before the first agent
}

scenario::kmem_counts kmem_tracer::read() {
  (void)write_text(_dir + "/tracing_on", "0");
  for (const auto& cpu : list_dir(_dir + "/per_cpu")) {
    auto stats = read_text(_dir + "/per_cpu/" + cpu + "/stats");
    for (std::string_view key : {"overrun: ", "dropped events: "})
      if (auto lost = field(stats, key); !lost.empty() && lost != "0")
        throw std::runtime_error(fmt::format("kmem tracing lost {} events on {}", lost, cpu));
  }
  scenario::kmem_counts k;
  std::ifstream in(_dir + "/trace");
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

void kmem_tracer::remove() {
  if (_created) {
    (void)write_text(_dir + "/tracing_on", "0");
    (void)write_text(_dir + "/" + ALLOC + "enable", "0");
    (void)write_text(_dir + "/" + FREE + "enable", "0");
    ::rmdir(_dir.c_str());
    _created = false;
  }
  if (_mounted) {
    ::umount(TRACEFS);
    ::unlink(mount_record().c_str());
    _mounted = false;
  }
}

kmem_tracer::~kmem_tracer() { remove(); }

}  // namespace rmapkit::kcheck
