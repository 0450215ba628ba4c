#include "kcheck/tracefs.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <stdexcept>
#include <string_view>

#include <fmt/format.h>

#include "kcheck/procfs.h"

namespace rmapkit::kcheck {

namespace {

constexpr const char* TRACEFS = "/sys/kernel/tracing";
constexpr const char* ALLOC = "events/kmem/kmem_cache_alloc/";
constexpr const char* FREE = "events/kmem/kmem_cache_free/";

bool exists(const std::string& path) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0;
}

/// Opening with O_TRUNC empties a tracefs list (set_event_pid) or the trace buffer.
void truncate(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd >= 0) ::close(fd);
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

/// The value after "key=" up to the next space or '+' (a call site's offset).
std::string_view field(std::string_view line, std::string_view key) {
  auto at = line.find(key);
  if (at == std::string_view::npos) return {};
  auto v = line.substr(at + key.size());
  return v.substr(0, v.find_first_of(" +\n"));
}

}  // namespace

kmem_tracer::kmem_tracer() : _dir(TRACEFS) {
  if (!exists(_dir + "/events")) {
    if (::mount("nodev", TRACEFS, "tracefs", 0, nullptr) != 0)
      throw std::runtime_error(fmt::format("cannot mount tracefs on {}", TRACEFS));
    _mounted = true;
  }
  if (!exists(_dir + "/" + ALLOC)) throw std::runtime_error("the kernel has no kmem:kmem_cache_alloc tracepoint");
  set("tracing_on", "0");
  set(std::string(ALLOC) + "enable", "0");
  set(std::string(FREE) + "enable", "0");
  set("buffer_size_kb", "65536");
  set("options/event-fork", "1");
  set("set_event_pid", "");  // follow() adds the agents; tracing is off until then
  set(std::string(ALLOC) + "filter",
      "call_site.function == __anon_vma_prepare || call_site.function == anon_vma_fork || "
      "call_site.function == anon_vma_clone");
  set(std::string(FREE) + "filter", "call_site.function == unlink_anon_vmas || call_site.function == __put_anon_vma");
  truncate(_dir + "/trace");
  set(std::string(ALLOC) + "enable", "1");
  set(std::string(FREE) + "enable", "1");
}

void kmem_tracer::follow(int pid) {
  // A plain write appends to the pid list.
  if (int e = write_text(_dir + "/set_event_pid", std::to_string(pid)))
    throw std::runtime_error(fmt::format("cannot trace process {}: errno {}", pid, e));
  (void)write_text(_dir + "/tracing_on", "1");
}

void kmem_tracer::set(const std::string& file, const std::string& value) {
  auto path = _dir + "/" + file;
  if (!_saved.count(file)) {
    auto old = trimmed(read_text(path));
    // A filter file reads "none" when there is none; set_event_pid reads empty.
    if (file.ends_with("filter") && old == "none") old = "0";
    if (file == "buffer_size_kb") old = old.substr(0, old.find(' '));  // "7 (expanded: 1408)"
    _saved[file] = old;
  }
  if (file == "set_event_pid") truncate(path);  // plain writes append to the list
  if (value.empty()) return;
  if (int e = write_text(path, value)) throw std::runtime_error(fmt::format("cannot write {} to {}: errno {}", value, path, e));
}

scenario::kmem_counts kmem_tracer::read() {
  (void)write_text(_dir + "/tracing_on", "0");
  for (int cpu = 0; exists(fmt::format("{}/per_cpu/cpu{}", _dir, cpu)); ++cpu) {
    auto stats = read_text(fmt::format("{}/per_cpu/cpu{}/stats", _dir, cpu));
    if (auto lost = field(stats, "overrun: "); !lost.empty() && lost != "0")
      throw std::runtime_error(fmt::format("kmem tracing lost {} events on cpu {}", lost, cpu));
  }
  scenario::kmem_counts k;
  std::ifstream in(_dir + "/trace");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("#")) continue;
    const bool alloc = line.find("kmem_cache_alloc:") != std::string::npos;
    const bool free = line.find("kmem_cache_free:") != std::string::npos;
    if (!alloc && !free) continue;
    // anon_vma's cache has a constructor, so it is never merged and keeps its name.
    const bool av = field(line, "name=") == "anon_vma";
    if (alloc) (av ? k.anon_vma_alloc : k.avc_alloc)++;
    else (av ? k.anon_vma_free : k.avc_free)++;
  }
  return k;
}

kmem_tracer::~kmem_tracer() {
  (void)write_text(_dir + "/tracing_on", "0");
  // Events off first, then their filters and the pid list, the rest, tracing_on last.
  for (const char* f : {"events/kmem/kmem_cache_alloc/enable", "events/kmem/kmem_cache_free/enable"})
    if (auto it = _saved.find(f); it != _saved.end()) (void)write_text(_dir + "/" + f, it->second);
  for (const auto& [file, value] : _saved) {
    if (file.ends_with("enable") || file == "tracing_on") continue;
    if (file == "set_event_pid") truncate(_dir + "/" + file);
    if (!value.empty()) (void)write_text(_dir + "/" + file, value);
  }
  truncate(_dir + "/trace");
  if (auto it = _saved.find("tracing_on"); it != _saved.end()) (void)write_text(_dir + "/tracing_on", it->second);
  if (_mounted) ::umount(TRACEFS);
}

}  // namespace rmapkit::kcheck
